# Accounts in a real browser: t/browser/accounts.mjs registers through the form (a server
# validation error first), logs out and in, reloads, opens the account view, and watches a member
# who registers in a second browser context arrive live. It prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/accounts.mjs';
my $run_limit = 150;    # seconds; accounts.mjs stops itself after 90

skip_without_browser();

# cheap password hashing: the test registers and logs in several times; two failed logins a
# minute, so that its third wrong password meets the limit
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024\n  login-limit: 2\n  login-window: 60");
my $url = $server->tls_url;
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("accounts in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
