# The browser suite behind a real proxy: HAProxy terminates TLS (HTTP/2 and HTTP/1.1 by ALPN) and
# passes WebSockets to forumd's plain port (Chromium opens them over HTTP/2 to HAProxy, RFC 8441; HAProxy
# upgrades HTTP/1.1 to forumd), forumd trusts it (trusted-proxies), and the accounts,
# feed and chat flows of t/61-63 run in Chromium against HAProxy's address. Without trusted-proxies
# every POST and /ws would be refused there: the page's https origin is not forumd's http one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use t::Util;
use t::browser::Runner;

my $haproxy_bin = '/usr/sbin/haproxy';
skip_without_browser();
plan skip_all => "no HAProxy at $haproxy_bin (Debian package haproxy)" unless -x $haproxy_bin;

# script, seconds it may run (each stops itself earlier), the auth settings its t/6N file uses
my @flows = (
    ['t/browser/accounts.mjs', 150, "auth:\n  scrypt-n: 1024\n  login-limit: 2\n  login-window: 60"],
    ['t/browser/feed.mjs',     180, "auth:\n  scrypt-n: 1024"],
    ['t/browser/chat.mjs',     210, "auth:\n  scrypt-n: 1024"],
);

for my $flow (@flows) {
    my ($script, $limit, $settings) = @$flow;
    # a fresh forum for each flow, as in t/61-63
    my $server = spawn_forumd(extra => "trusted-proxies: [127.0.0.1/8]\n", settings => $settings);
    my $haproxy = spawn_haproxy($server);
    my $url = $haproxy->url;
    my ($output, $exit) = run_node($script, $limit, $url);
    report_tap("$script in chromium through HAProxy at $url/", $script, $output, $exit);
    like $server->log, qr/"GET \/ws[ ?].*" 101 /, 'the page\'s WebSockets reached forumd through HAProxy'
        if $script =~ /chat|feed/;
    $haproxy->stop;
    is $server->stop, 0, 'forumd stops cleanly';
    if (!Test::More->builder->is_passing) {
        diag "node $script $url:\n$output";
        diag "haproxy's log:\n" . $haproxy->log;
        diag "forumd's log:\n" . $server->log;
        last;
    }
}

done_testing;
