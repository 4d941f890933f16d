# The chat's layout in a real browser: t/browser/layout.mjs checks that the members list stays on
# screen beside the feed in windows from about 700 px up (800 and 1024 px wide: two windows side by
# side), its rows clickable and a conversation opening beside it, and that a phone (390 px) still
# gets the "Messages" panel. It prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/layout.mjs';
my $run_limit = 120;    # seconds; layout.mjs stops itself after 90

skip_without_browser();

# cheap password hashing: the test registers two members
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("chat layout in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
