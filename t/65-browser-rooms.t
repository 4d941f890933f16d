# The lobby and the rooms in a real browser: t/browser/rooms.mjs signs three members in, in three
# browser contexts, and checks the rooms list, the lobby's history pages, live messages between
# them, typing both ways, creating, joining and leaving a room, a mention badge, a rate-limited
# send that keeps its text, a cut connection that resumes without losses or doubles, the keyboard
# and the phone layout. It prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/rooms.mjs';
my $run_limit = 210;    # seconds; rooms.mjs stops itself after 150

skip_without_browser();

# cheap password hashing (nine members register); room messages limited to a burst of 8 with a
# slow refill, so that one member reaches the limit by sending quickly while the others never do
my $server = spawn_forumd(
    plugins  => [qw(auth posts comments chat rooms)],
    settings => "auth:\n  scrypt-n: 1024\nrooms:\n  rate-burst: 8\n  rate-refill-ms: 20000",
);
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("rooms in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
