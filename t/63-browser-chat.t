# The chat in a real browser: t/browser/chat.mjs signs two members in, in two browser contexts, and
# checks the members list and its live order, messages with their sender and date, unread badges and
# notices, typing both ways, history pages while scrolling up, and sending across a cut connection
# exactly once. It prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/chat.mjs';
my $run_limit = 210;    # seconds; chat.mjs stops itself after 150

skip_without_browser();

# cheap password hashing: the test registers five members
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("chat in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
