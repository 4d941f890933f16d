# The WebSocket endpoint and the hub: authentication and origin before the upgrade, the hello frame,
# frames routed to plugins, errors, size limits, presence across tabs, publishing, logout, pings and
# idle peers.
use strict;
use warnings;
use lib '.';
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)],
                          limits => { 'ws-ping-interval' => 0.2, 'ws-idle-timeout' => 0.8 });
my $ws_url = 'ws://127.0.0.1:' . $server->port . '/ws';
my $wss_url = 'wss://127.0.0.1:' . $server->tls_port . '/ws';
my %jar = map { $_ => probe_login($server, $_) } 1 .. 3;
my %cookie = map { $_ => cookie_of($jar{$_}) } keys %jar;

subtest 'the upgrade needs a session and the same origin' => sub {
    my $ws = ws_connect($ws_url);
    is $ws->{error}, 401, 'no session: 401 before the upgrade';
    $ws = ws_connect($ws_url, cookie => 'sid=' . ('ab' x 32));
    is $ws->{error}, 401, 'an unknown session: 401';
    $ws = ws_connect($ws_url, cookie => $cookie{1}, origin => 'http://evil.example');
    is $ws->{error}, 403, 'another origin: 403';
    $ws = ws_connect($ws_url, cookie => $cookie{1}, origin => 'http://127.0.0.1:' . $server->port);
    ok !$ws->{error}, 'the same origin is accepted';
    $ws->close;
    my $h2 = curl_json('curl -s --http2 --insecure', 'GET', $server->tls_url . '/ws', headers => ["Cookie: $cookie{1}"]);
    is $h2->{status}, 400, 'an HTTP/2 request for /ws gets a clear 400 (WebSocket needs HTTP/1.1)';
};

subtest 'hello first, then plugins, over ws:// and wss://' => sub {
    for my $url ($ws_url, $wss_url) {
        my $ws = ws_connect("$url?after=42", cookie => $cookie{1});
        ok !$ws->{error}, "connected to $url" or diag explain $ws->{error};
        my $hello = $ws->next;
        is $hello->{type}, 'hello', 'the first frame is hello';
        ok $hello->{probe}, 'plugins add their members to hello';
        my $open = $ws->wait_for('probe.open');
        is $open->{query}, 'after=42', 'plugins see the query string on ws.open';
        ok $open->{online}, 'the user is online by then';
        $ws->send({ type => 'probe.echo', data => { x => [1, 'two'] }, from => 999 });
        my $echo = $ws->wait_for('probe.echo');
        is_deeply $echo, { type => 'probe.echo', user => 1, data => { x => [1, 'two'] } },
            'a frame reaches the plugin that registered its type, with the session user (not the payload)';
        $ws->send({ type => 'ping' });
        ok $ws->wait_for('pong'), 'ping is answered with pong';
        $ws->close;
    }
};

subtest 'refused frames get an error and the connection stays' => sub {
    my $ws = ws_connect($ws_url, cookie => $cookie{1});
    $ws->wait_for('hello');
    for my $case ([{ type => 'no.such' }, 'no.such'], [{ kind => 'x' }, undef], ['[1,2]', undef], [{ type => 7 }, undef],
                  [{ type => 'probe.echo' }, 'probe.echo']) {
        $ws->send($case->[0]);
        my $err = $ws->wait_for('error');
        ok $err, 'error frame for ' . (ref $case->[0] ? t::Util::json_encode($case->[0]) : $case->[0]);
        ok $err->{code} && $err->{message}, 'with a code and a message';
        is $err->{ref}, $case->[1], 'and the ref at fault';
    }
    $ws->send({ type => 'ping' });
    ok $ws->wait_for('pong'), 'the connection is still open';
    ok !$ws->{closed}, 'not closed';
    $ws->close;
};

subtest 'a frame that is not JSON closes the connection' => sub {
    my $ws = ws_connect($ws_url, cookie => $cookie{1});
    $ws->wait_for('hello');
    $ws->send_raw('this is not json');
    my $err = $ws->wait_for('error');
    is $err->{code}, 'bad_request', 'an error frame first';
    my $closed = $ws->wait_closed;
    is $closed->[0], 1007, 'then close 1007';
};

subtest 'a frame over 64 KiB closes the connection with 1009' => sub {
    my $ws = ws_connect($ws_url, cookie => $cookie{1});
    $ws->wait_for('hello');
    $ws->send({ type => 'probe.echo', data => 'x' x (65 * 1024) });
    my $closed = $ws->wait_closed;
    is $closed->[0], 1009, 'closed with 1009';
    my $ok = ws_connect($ws_url, cookie => $cookie{1});
    $ok->send({ type => 'probe.echo', data => 'y' x (60 * 1024) });
    is length($ok->wait_for('probe.echo')->{data} // ''), 60 * 1024, 'a 60 KiB frame is fine';
    $ok->close;
};

subtest 'presence: one user, several tabs, counted once' => sub {
    my $a = ws_connect($ws_url, cookie => $cookie{1});
    $a->wait_for('hello');
    $a->collect('presence', 0.3);
    my $b1 = ws_connect($ws_url, cookie => $cookie{2});
    my $p = $a->wait_for('presence');
    is_deeply $p, { type => 'presence', user_id => 2, online => JSON::PP::true }, 'the first tab of user 2 brings them online';
    my $b2 = ws_connect($wss_url, cookie => $cookie{2});
    $b2->wait_for('hello');
    is scalar $a->collect('presence', 0.5), 0, 'a second tab sends no presence';

    my $note = curl_json('curl -s', 'POST', $server->url . '/api/probe/publish', json => { to => 2, text => 'for two' },
                         cookie_jar => $jar{1});
    is $note->{status}, 204, 'publish to a user';
    is $b1->wait_for('probe.note')->{text}, 'for two', 'reaches their first tab';
    is $b2->wait_for('probe.note')->{text}, 'for two', 'and their second tab';
    is scalar $a->collect('probe.note', 0.3), 0, 'and no one else';
    curl_json('curl -s', 'POST', $server->url . '/api/probe/publish', json => { text => 'for all' }, cookie_jar => $jar{1});
    is $_->wait_for('probe.note')->{text}, 'for all', 'publish to everyone reaches every connection' for $a, $b1, $b2;

    $b1->close;
    is scalar $a->collect('presence', 0.5), 0, 'closing one of two tabs keeps the user online';
    $b2->close;
    $p = $a->wait_for('presence');
    is_deeply $p, { type => 'presence', user_id => 2, online => JSON::PP::false }, 'closing the last tab takes them offline';
    $a->close;
};

subtest 'logout closes the WebSockets of that session only' => sub {
    my $other_jar = probe_login($server, 3);
    my $ws = ws_connect($ws_url, cookie => $cookie{3});
    my $other = ws_connect($ws_url, cookie => cookie_of($other_jar));
    $_->wait_for('hello') for $ws, $other;
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/probe/logout', cookie_jar => $jar{3});
    is $res->{status}, 204, 'logged out';
    my $closed = $ws->wait_closed(5);
    is $closed->[0], 1008, 'that session\'s WebSocket is closed (1008)';
    $other->send({ type => 'ping' });
    ok $other->wait_for('pong'), 'another session of the same user stays open';
    $other->close;
    my $again = ws_connect($ws_url, cookie => $cookie{3});
    is $again->{error}, 401, 'and the dead session cannot reconnect';
};

subtest 'a client that answers pings stays; a silent one is closed' => sub {
    my $ws = ws_connect($ws_url, cookie => $cookie{1});
    $ws->wait_for('hello');
    $ws->collect('none', 2);
    ok !$ws->{closed}, 'a client answering pings outlives the idle timeout';
    $ws->close;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port) or die $!;
    print $sock "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: $cookie{1}\r\n\r\n";
    my ($buf, $got, $start) = ('', '', time);
    $sock->blocking(1);
    $sock->timeout(1);
    while (time - $start < 15) {
        my $n = sysread($sock, $buf, 65536);
        last if defined $n && $n == 0;
        $got .= $buf if $n;
    }
    like $got, qr{^HTTP/1\.1 101}, 'the raw client was upgraded';
    ok time - $start < 15, 'and its connection was ended by the server once it stayed silent';
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
