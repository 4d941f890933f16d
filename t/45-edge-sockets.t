# The network edge, socket by socket: a TLS connection reset by its client right after the handshake
# is released (h2o 2.2.5 kept every one of them open for good), and a connection must deliver a
# complete request within limits.header-timeout (an HTTP/2 header block continued forever, or HTTP/1.1
# headers a line at a time, used to hold their buffers for as long as the client liked), while slow but
# complete requests, kept-alive connections and WebSockets are served as before.
use strict;
use warnings;
use lib '.';
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL;
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

$SIG{PIPE} = 'IGNORE';

sub status_of { curl_json('curl -s', 'GET', $_[0]->url . '/_status')->{json} }

# Polls /_status until its HTTP connection count and descriptor count are those of `base` (each poll
# is one connection of its own, as the baseline's was); returns the last answer.
sub wait_for_baseline {
    my ($server, $base) = @_;
    my $st;
    my $deadline = time + 30;
    while (time < $deadline) {
        $st = status_of($server);
        return $st if $st->{connections}{http} == $base->{connections}{http} && $st->{fds} == $base->{fds};
        sleep 0.2;
    }
    return $st;
}

sub tls_connect {
    my ($server, %opts) = @_;
    return IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $server->tls_port, SSL_verify_mode => SSL_VERIFY_NONE,
                                SSL_alpn_protocols => [$opts{alpn}], $opts{tls12} ? (SSL_version => 'TLSv1_2') : ());
}

# Closes with a TCP reset (SO_LINGER 0) instead of a FIN, and without a TLS close_notify.
sub reset_close {
    my $s = shift;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) or die "SO_LINGER: $!";
    $s->close(SSL_no_shutdown => 1);
}

sub frame {
    my ($type, $flags, $stream, $payload) = @_;
    my $len = length $payload;
    return pack('CnCCN', $len >> 16, $len & 0xffff, $type, $flags, $stream) . $payload;
}
use constant { HEADERS => 1, SETTINGS => 4, CONTINUATION => 9, END_STREAM => 1, END_HEADERS => 4 };
use constant PREFACE => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

# Reads one whole HTTP/2 frame (blocking): (type, flags, stream, payload), or () when the connection ends.
sub read_frame {
    my $s = shift;
    my $head = read_exactly($s, 9) // return;
    my ($hi, $lo, $type, $flags, $stream) = unpack('CnCCN', $head);
    my $payload = read_exactly($s, ($hi << 16) | $lo) // return;
    return ($type, $flags, $stream & 0x7fffffff, $payload);
}

sub read_exactly {
    my ($s, $n) = @_;
    my $buf = '';
    while (length $buf < $n) {
        my $r = sysread($s, $buf, $n - length $buf, length $buf);
        return undef unless $r;
    }
    return $buf;
}

# One HTTP/1.1 response with a Content-Length, read whole: its status line.
sub read_response {
    my $s = shift;
    my ($status, $length) = (scalar <$s> // '', 0);
    while (defined(my $line = <$s>)) {
        $length = $1 if $line =~ /^content-length:\s*(\d+)/i;
        last if $line eq "\r\n";
    }
    read($s, my $body, $length) if $length;
    return $status;
}

# True once the server has ended the connection: end of input or an error, after reading what was there.
sub server_closed {
    my $s = shift;
    while (($s->can("pending") && $s->pending) || IO::Select->new($s)->can_read(0)) {
        my $r = sysread($s, my $buf, 65536);
        return 1 if !defined $r && !$!{EAGAIN} && !$!{EWOULDBLOCK};
        return 1 if defined $r && $r == 0;
        last unless defined $r;
    }
    return 0;
}

# Sends `trickle` once a second to each connection until the server has closed it or `seconds` have
# passed; returns for each whether the server closed it meanwhile.
sub trickle {
    my ($seconds, @conns) = @_;
    my @closed = (0) x @conns;
    my $deadline = time + $seconds;
    while (time < $deadline && grep { !$_ } @closed) {
        for my $i (0 .. $#conns) {
            next if $closed[$i];
            $closed[$i] = server_closed($conns[$i]{sock}) || !defined syswrite($conns[$i]{sock}, $conns[$i]{trickle});
        }
        sleep 1;
    }
    $closed[$_] ||= server_closed($conns[$_]{sock}) for 0 .. $#conns;
    return @closed;
}

subtest 'TLS connections reset right after the handshake are released' => sub {
    my $server = spawn_forumd();
    my $base = wait_for_baseline($server, status_of($server));
    ok defined $base->{fds} && $base->{fds} > 0, "/_status counts the open descriptors ($base->{fds})";

    my %done = (h1 => 0, h2 => 0);
    for (1 .. 300) {
        # TLS 1.2: the server finishes its handshake before the client does, so the reset follows it
        my $s = tls_connect($server, alpn => 'http/1.1', tls12 => 1) or last;
        $done{h1}++ if ($s->alpn_selected // '') eq 'http/1.1';
        reset_close($s);
    }
    for (1 .. 300) {
        my $s = tls_connect($server, alpn => 'h2') or last;
        # h2o answers the client's preface with its SETTINGS: it has finished the handshake and started HTTP/2
        syswrite($s, PREFACE . frame(SETTINGS, 0, 0, ''));
        my ($type) = read_frame($s);
        $done{h2}++ if ($s->alpn_selected // '') eq 'h2' && defined $type && $type == SETTINGS;
        reset_close($s);
    }
    is $done{h1}, 300, '300 HTTP/1.1 connections completed the handshake and were reset';
    is $done{h2}, 300, '300 HTTP/2 connections completed the handshake and were reset';

    my $after = wait_for_baseline($server, $base);
    is $after->{connections}{http}, $base->{connections}{http}, "the connection count is back to $base->{connections}{http}";
    is $after->{fds}, $base->{fds}, "the descriptor count is back to $base->{fds}";
    for my $proto ('--http1.1', '--http2') {
        my $res = curl_json("curl -s --insecure $proto", 'GET', $server->tls_url . '/_status');
        is $res->{status}, 200, "a new client is served ($proto)";
    }
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'a request that does not arrive within limits.header-timeout is closed' => sub {
    my $server = spawn_forumd(limits => { 'header-timeout' => 2 });
    my $base = wait_for_baseline($server, status_of($server));

    # HTTP/2: a HEADERS frame without END_HEADERS, then a CONTINUATION every second that never ends it;
    # each frame restarts h2o's own idle timer
    my $h2 = tls_connect($server, alpn => 'h2') or die "TLS: $SSL_ERROR";
    syswrite($h2, PREFACE . frame(SETTINGS, 0, 0, '') . frame(HEADERS, END_STREAM, 1, "\x82\x87"));
    # HTTP/1.1: a header line every second
    my $h1 = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port) or die $!;
    syswrite($h1, "GET /_status HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    is status_of($server)->{connections}{http}, $base->{connections}{http} + 2, 'both connections are open';

    # 8 s: four times the setting, and less than h2o's own 10 s request timeout for HTTP/1.1
    my @closed = trickle(8, { sock => $h2, trickle => frame(CONTINUATION, 0, 1, "\x00\x05x-pad\x01a") },
                            { sock => $h1, trickle => "X-Pad: a\r\n" });
    ok $closed[0], 'HTTP/2: the server closed a header block that kept growing';
    ok $closed[1], 'HTTP/1.1: the server closed headers sent a line at a time';
    my $after = wait_for_baseline($server, $base);
    is $after->{connections}{http}, $base->{connections}{http}, 'the connection count is back';
    is $after->{fds}, $base->{fds}, 'the descriptor count is back';
    like $server->log, qr/closed \d+ connections? that sent no complete request within limits\.header-timeout/, 'the log says why';

    # a connection that says nothing at all after its handshake goes the same way
    my $silent = tls_connect($server, alpn => 'h2') or die "TLS: $SSL_ERROR";
    ok((trickle(6, { sock => $silent, trickle => '' }))[0], 'a silent HTTP/2 connection is closed (h2o alone waits 10 s)');
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'slow but complete requests, kept-alive connections and WebSockets are served' => sub {
    my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)], limits => { 'header-timeout' => 2 });

    my $h2 = tls_connect($server, alpn => 'h2') or die "TLS: $SSL_ERROR";
    syswrite($h2, PREFACE . frame(SETTINGS, 0, 0, '') . frame(HEADERS, END_STREAM, 1, "\x82\x87"));
    sleep 1;
    syswrite($h2, frame(CONTINUATION, END_HEADERS, 1, "\x44\x08/_status\x41\x09127.0.0.1"));
    my ($type, $flags, $stream, $payload);
    while (($type, $flags, $stream, $payload) = read_frame($h2)) {
        last if $type == HEADERS && $stream == 1;
    }
    ok defined $type && ord($payload) == 0x88, 'HTTP/2: a header block completed a second later is answered 200';

    my $h1 = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port) or die $!;
    # a static file: its length is known, so the connection stays open after it
    syswrite($h1, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    sleep 1;
    syswrite($h1, "\r\n");
    like read_response($h1), qr{^HTTP/1\.1 200 }, 'HTTP/1.1: headers completed a second later are answered 200';
    sleep 1;
    syswrite($h1, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    like read_response($h1), qr{^HTTP/1\.1 200 }, 'a kept-alive connection is served again after a pause shorter than the setting';

    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of(probe_login($server, 1)));
    ok !$ws->{error}, 'a WebSocket is open';
    is $ws->next->{type}, 'hello', 'hello';
    sleep 5;
    $ws->send({ type => 'ping' });
    ok $ws->wait_for('pong'), 'a quiet WebSocket outlives the setting (the hub has its own timeouts)';
    $ws->close;
    is $server->stop, 0, 'forumd exits 0';
};

done_testing;
