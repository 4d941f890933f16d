# The shell in a real browser: t/browser/shell.mjs checks that a signed-out load is quiet, that a lost
# connection shows "Reconnecting… Retry now" and comes back quickly (Retry now, the online event, the
# page becoming visible, a backoff capped at 5 s in the first minute), and the unread count in the
# tab's title with opt-in desktop notifications while hidden. It prints TAP; each line becomes a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $script = 't/browser/shell.mjs';
my $run_limit = 210;    # seconds; shell.mjs stops itself after 150

skip_without_browser();

# a server with cheap password hashing
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024");
my $url = $server->tls_url;

# the client's first question, signed out: answered 200 with no user, so the browser logs no error
my $who = curl_json('curl --silent --insecure', 'GET', "$url/api/auth/session");
is $who->{status}, 200, 'GET /api/auth/session without a session: 200';
ok $who->{json} && exists $who->{json}{user} && !defined $who->{json}{user}, 'and {"user": null}' or diag $who->{body};
my ($output, $exit) = run_node($script, $run_limit, $url);
report_tap("the shell in chromium at $url/", $script, $output, $exit);
is $server->stop, 0, 'forumd stops cleanly';

if (!Test::More->builder->is_passing) {
    diag "node $script $url:\n$output";
    diag "forumd's log:\n" . $server->log;
}

done_testing;
