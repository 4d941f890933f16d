# The chat's finish in a real browser: t/browser/polish.mjs checks that a conversation and a room
# open on their newest ten messages and load more only when the reader goes up, that unread
# messages open under a "New messages" line and only what was shown is read, right-to-left text,
# a draft per conversation and room, links, relative times, groups and day lines, the phone panel
# as a modal dialog, Escape on desktop, and one presence for a member who never connected. It
# prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/polish.mjs';
my $run_limit = 180;    # seconds; polish.mjs stops itself after 120

skip_without_browser();

# cheap password hashing: the test registers five members; the lobby's rate limit would refuse
# the 30 messages the test writes there in a row
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\nrooms:\n  rate-burst: 100\n  rate-refill-ms: 10");
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("chat polish in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
