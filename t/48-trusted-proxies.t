# Behind a proxy: trusted-proxies names the peers whose X-Forwarded-For, X-Forwarded-Proto and
# X-Forwarded-Host are believed. Through HAProxy terminating TLS (HTTP/2 and HTTP/1.1), the browser's
# https Origin is accepted for POSTs and /ws, the access log and the login limiter see the client's
# address, and /_status judges the forwarded client; from any other peer the headers are ignored.
#
# Loopback has many addresses: HAProxy reaches forumd from 127.0.0.1 (trusted), clients connect from
# 127.0.0.2, 127.0.0.4 and 127.0.0.5 (not trusted) and from 127.0.0.3, which stands for a second, trusted proxy.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

my $haproxy_bin = '/usr/sbin/haproxy';
plan skip_all => "no HAProxy at $haproxy_bin (Debian package haproxy)" unless -x $haproxy_bin;

subtest 'trusted-proxies in the configuration' => sub {
    my $dir = tempdir(CLEANUP => 1);
    # three lines before the case's own: the line numbers below count them
    my $base = "listen: 8080\n" . database_yaml("$dir/forum.db", flow => 1) . "public-dir: " . root_dir() . "/public\n";
    for my $case (["trusted-proxies: [127.0.0.1/8, '::1', 10.0.0.0/8, 'fd00::/8', 192.0.2.7]\n", undef],
                  ["trusted-proxies: 127.0.0.1\n", undef],
                  ["trusted-proxies: []\n", undef],
                  ["trusted-proxies:\n  - 127.0.0.1\n  - 10.1.2.300\n", 6],
                  ["trusted-proxies: [127.0.0.1/33]\n", 4],
                  ["trusted-proxies: ['::1/129']\n", 4],
                  ["trusted-proxies: [localhost]\n", 4],
                  ["trusted-proxies: {a: 1}\n", 4],
                  ["trusted-proxies: [127.0.0.1]\ntrusted-proxies: ['::1']\n", 5]) {
        my ($yaml, $line) = @$case;
        open my $fh, '>', "$dir/f.yaml" or die $!;
        print $fh $base . $yaml;
        close $fh;
        my $out = `@{[ forumd_bin() ]} -t -c $dir/f.yaml 2>&1`;
        my $rc = $? >> 8;
        (my $show = $yaml) =~ s/\n/ | /g;
        if (defined $line) {
            isnt $rc, 0, "refused: $show";
            like $out, qr/^\Q$dir\E\/f\.yaml:$line: trusted-proxies: /m, "names the file and line $line" or diag $out;
        } else {
            is $rc, 0, "accepted: $show" or diag $out;
        }
    }
};

my $server = spawn_forumd(extra => "trusted-proxies: [127.0.0.1, 127.0.0.3]\n",
                          settings => "auth:\n  scrypt-n: 1024\n  login-limit: 2\n  login-window: 600");
my $haproxy = spawn_haproxy($server);
my $proxy = $haproxy->url;
my $origin = $proxy; # what a browser sends for a page it loaded from the proxy
my $direct = $server->url;

# curl from a chosen loopback source address
sub curl_from {
    my ($src, $proto) = @_;
    return "curl --silent --show-error --insecure --interface $src " . ($proto // '--http2');
}

my %account = (nickname => 'proxied', email => 'proxied@example.org', password => 'correct horse battery',
               first_name => 'Pro', last_name => 'Xy', age => 30, gender => 'other');
my $jar = tempdir(CLEANUP => 1) . '/jar';

subtest 'through HAProxy a POST with the browser\'s Origin is accepted' => sub {
    for my $proto ('--http2', '--http1.1') {
        my $res = curl_json(curl_from('127.0.0.2', $proto), 'POST', "$proxy/api/auth/login",
                            json => { login => 'nobody', password => 'wrong password' }, headers => ["Origin: $origin"]);
        is $res->{status}, 401, "$proto: the origin passes and the route answers (401 for a wrong login)" or diag $res->{body};
    }
    my $res = curl_json(curl_from('127.0.0.2'), 'POST', "$proxy/api/auth/register", json => \%account,
                        headers => ["Origin: $origin"], cookie_jar => $jar);
    is $res->{status}, 201, 'registering through the proxy works' or diag $res->{body};
    like $res->{headers}{'set-cookie'} // '', qr/;\s*Secure/i, 'the session cookie is Secure: the browser used https';
    like $res->{headers}{'strict-transport-security'} // '', qr/max-age=/, 'and HSTS is sent: the browser used https';
    $res = curl_json(curl_from('127.0.0.2'), 'POST', "$proxy/api/auth/login",
                     json => { login => 'x', password => 'y' }, headers => ['Origin: https://evil.example']);
    is $res->{status}, 403, 'another origin is still refused';
    $res = curl_json(curl_from('127.0.0.2'), 'POST', "$proxy/api/auth/login",
                     json => { login => 'x', password => 'y' }, headers => ['Origin: ' . $server->url]);
    is $res->{status}, 403, 'so is forumd\'s own http origin, which the browser never saw';
};

subtest 'through HAProxy a WebSocket with the browser\'s Origin opens' => sub {
    my $cookie = cookie_of($jar);
    ok $cookie, 'the session cookie from registering';
    (my $ws_url = $proxy) =~ s/^https/wss/;
    my $ws = ws_connect("$ws_url/ws", cookie => $cookie, origin => $origin);
    ok !$ws->{error}, 'the upgrade passes the origin check' or diag explain $ws->{error};
    $ws->close unless $ws->{error};
    $ws = ws_connect("$ws_url/ws", cookie => $cookie, origin => 'https://evil.example');
    ok $ws->{error}, 'another origin is refused';
};

subtest 'the access log shows the client, not the proxy' => sub {
    my $res = curl_json(curl_from('127.0.0.2'), 'GET', "$proxy/index.html?marker=via-proxy");
    is $res->{status}, 200, 'a request through the proxy';
    $res = curl_json(curl_from('127.0.0.2'), 'GET', "$proxy/index.html?marker=spoofed", headers => ['X-Forwarded-For: 198.51.100.7']);
    $res = curl_json(curl_from('127.0.0.2', '--http1.1'), 'GET', "$direct/index.html?marker=direct",
                     headers => ['X-Forwarded-For: 198.51.100.8']);
    my $log = $server->log;
    like $log, qr/^127\.0\.0\.2 .*marker=via-proxy/m, 'the forwarded client address starts the line';
    unlike $log, qr/^127\.0\.0\.1 .*marker=via-proxy/m, 'not the proxy\'s';
    like $log, qr/^127\.0\.0\.2 .*marker=spoofed/m, 'an address the client wrote itself before the proxy\'s is not believed';
    like $log, qr/^127\.0\.0\.2 .*marker=direct/m, 'nor from a peer that is not a trusted proxy';
};

subtest 'the login limiter counts the forwarded address' => sub {
    my @codes = map {
        curl_json(curl_from('127.0.0.5'), 'POST', "$proxy/api/auth/login",
                  json => { login => "someone$_", password => 'wrong password' }, headers => ["Origin: $origin"])->{status}
    } 1 .. 3;
    # two failures a window, then 429
    is_deeply \@codes, [401, 401, 429], 'the client at 127.0.0.5 is limited' or diag "@codes";
    my $res = curl_json(curl_from('127.0.0.4'), 'POST', "$proxy/api/auth/login",
                        json => { login => 'other', password => 'wrong password' }, headers => ["Origin: $origin"]);
    is $res->{status}, 401, 'another client behind the same proxy is not';
    # from an untrusted peer, changing X-Forwarded-For does not make a new client
    $res = curl_json(curl_from('127.0.0.5', '--http1.1'), 'POST', "$direct/api/auth/login",
                     json => { login => 'again', password => 'wrong password' }, headers => ['X-Forwarded-For: 198.51.100.9']);
    is $res->{status}, 429, 'a forged X-Forwarded-For from an untrusted peer is ignored by the limiter';
};

subtest 'directly from an untrusted peer the forwarded headers are ignored' => sub {
    my $res = curl_json(curl_from('127.0.0.4', '--http1.1'), 'POST', "$direct/api/auth/login",
                        json => { login => 'x', password => 'y' },
                        headers => ["Origin: $origin", 'X-Forwarded-Proto: https', "X-Forwarded-Host: 127.0.0.1:" . $haproxy->port]);
    is $res->{status}, 403, 'X-Forwarded-Proto and X-Forwarded-Host do not make the https origin match';
    $res = curl_json(curl_from('127.0.0.4', '--http1.1'), 'GET', "$direct/_status", headers => ['X-Forwarded-For: 203.0.113.9']);
    is $res->{status}, 200, '/_status judges the loopback peer itself, not its X-Forwarded-For';
};

subtest '/_status judges the forwarded client' => sub {
    my $res = curl_json(curl_from('127.0.0.2'), 'GET', "$proxy/_status");
    is $res->{status}, 200, 'a loopback client through the proxy is answered';
    # 127.0.0.3 stands for a trusted proxy in front of HAProxy that forwarded a remote client
    $res = curl_json(curl_from('127.0.0.3'), 'GET', "$proxy/_status", headers => ['X-Forwarded-For: 203.0.113.9']);
    is $res->{status}, 404, 'a remote client forwarded by trusted proxies is not';
    $res = curl_json(curl_from('127.0.0.3'), 'GET', "$proxy/_status");
    is $res->{status}, 200, 'that proxy itself is';
    $res = curl_json(curl_from('127.0.0.1', '--http1.1'), 'GET', "$direct/_status", headers => ['X-Forwarded-For: 203.0.113.9']);
    is $res->{status}, 404, 'directly from a trusted proxy, too';
    $res = curl_json(curl_from('127.0.0.2'), 'GET', "$proxy/_status", headers => ['X-Forwarded-For: 203.0.113.9']);
    is $res->{status}, 200, 'a client that is no proxy cannot forward for someone else (it is judged itself)';
};

$haproxy->stop;
is $server->stop, 0, 'forumd stops cleanly';
if (!Test::More->builder->is_passing) {
    diag "haproxy's log:\n" . $haproxy->log;
    diag "forumd's log:\n" . $server->log;
}

done_testing;
