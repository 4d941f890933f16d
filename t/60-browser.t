# The client page in a real browser: Debian's Chromium, driven by playwright-core from
# t/browser/smoke.mjs, loads the page over HTTPS/2 signed out and checks that it runs cleanly under
# the CSP and shows the login view. smoke.mjs prints TAP; each of its lines becomes a test here.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/smoke.mjs';
my $run_limit = 120;    # seconds; smoke.mjs stops itself after 60

skip_without_browser();

my $server = spawn_forumd();
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("chromium loads $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
