# The network edge over raw sockets: answers framed by their length so that pipelining survives errors,
# ambiguous HTTP/1.1 framing refused with the connection closed (nothing smuggled behind it is answered),
# bounded sid lookups per request, and the odd targets and handshakes (empty :path, %00, WebSocket version).
use strict;
use warnings;
use lib '.';
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);
use t::Util;

my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)]);
my $port = $server->{port};
my $sid = cookie_of(probe_login($server, 7)); # "sid=<64 hex>"

# Writes $bytes (all of them, while reading) and reads until the server closes or stays silent for
# $quiet seconds (a fraction of one once $want responses have begun); returns (what was read, 1 when the
# server closed the connection).
sub exchange {
    my ($bytes, $quiet, $want) = @_;
    $quiet //= 2;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my ($in, $closed, $last) = ('', 0, time);
    while (time - $last < $quiet) {
        my ($r, $w) = IO::Select->select($sel, length $bytes ? $sel : undef, undef, 0.1);
        if ($w && @$w) {
            my $n = syswrite($sock, $bytes);
            substr($bytes, 0, $n, '') if $n;
        }
        if ($r && @$r) {
            my $n = sysread($sock, my $chunk, 1 << 16);
            if (!$n) {
                $closed = 1;
                last;
            }
            $in .= $chunk;
            $last = time;
            $quiet = 0.3 if $want && (() = $in =~ /^HTTP\/1\.1 \d{3}/mg) >= $want;
        }
    }
    close $sock;
    return ($in, $closed);
}

# Splits a stream of HTTP/1.1 responses into [{status, headers => {lc name => value}, body}].
sub responses {
    my $in = shift;
    my @out;
    while ($in =~ s/\AHTTP\/1\.1 (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n//) {
        my ($status, $head) = ($1, $2);
        my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $head;
        my $body = '';
        if (defined $h{'content-length'}) {
            $body = substr($in, 0, $h{'content-length'}, '');
        } elsif (($h{'transfer-encoding'} // '') =~ /chunked/) {
            while ($in =~ s/\A([0-9a-fA-F]+)\r\n//) {
                my $n = hex $1;
                $body .= substr($in, 0, $n, '');
                $in =~ s/\A\r\n//;
                last if $n == 0;
            }
        } elsif ($status != 204 && $status != 304) {
            ($body, $in) = ($in, ''); # unframed: the body runs to the close
        }
        push @out, { status => $status, headers => \%h, body => $body };
    }
    return @out;
}

subtest 'a thousand pipelined requests, errors and 201s among them, all answered with their length' => sub {
    my @reqs = (
        [200, "GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\n\r\n"],
        [401, "GET /api/probe/echo/a/b HTTP/1.1\r\nHost: t\r\n\r\n"],
        [404, "GET /api/no-such-route HTTP/1.1\r\nHost: t\r\n\r\n"],
        [404, "GET /no-such-file.txt HTTP/1.1\r\nHost: t\r\n\r\n"],
        [422, "POST /api/probe/items HTTP/1.1\r\nHost: t\r\nCookie: $sid\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"],
        [400, "GET /ws HTTP/1.1\r\nHost: t\r\n\r\n"],
        [200, "GET /_status HTTP/1.1\r\nHost: t\r\n\r\n"],
    );
    my ($bytes, @want) = ('');
    for my $i (0 .. 999) {
        my ($status, $req) = @{ $reqs[$i % @reqs] };
        if ($i % 10 == 9) {
            my $body = qq({"name":"item$i"});
            ($status, $req) = (201, "POST /api/probe/items HTTP/1.1\r\nHost: t\r\nCookie: $sid\r\nContent-Type: application/json\r\n"
                                    . "Content-Length: " . length($body) . "\r\n\r\n$body");
        }
        ($status, $req) = (204, "POST /api/probe/logout HTTP/1.1\r\nHost: t\r\nCookie: $sid\r\nContent-Length: 0\r\n\r\n") if $i == 999;
        $bytes .= $req;
        push @want, $status;
    }
    my ($in) = exchange($bytes, 5, 1000);
    my @res = responses($in);
    is scalar(@res), 1000, 'every request is answered';
    is_deeply [map { $_->{status} } @res], \@want, 'in order, each with its own status';
    is scalar(grep { $_->{status} != 204 && !defined $_->{headers}{'content-length'} } @res), 0,
       'every answer with a body carries Content-Length';
    is scalar(grep { defined $_->{headers}{'transfer-encoding'} } @res), 0, 'none is chunked';
    is scalar(grep { lc($_->{headers}{connection} // '') ne 'keep-alive' } @res), 0, 'none closes the connection';
    my ($no_content) = grep { $_->{status} == 204 } @res;
    ok $no_content && !defined $no_content->{headers}{'content-length'} && $no_content->{body} eq '',
       'the 204 is framed by its status alone, without Content-Length';
    $sid = cookie_of(probe_login($server, 7)); # the 204 was a logout
};

subtest 'ambiguous HTTP/1.1 framing gets 400 and the connection closed; the request behind it is not answered' => sub {
    my $next = "GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\n\r\n";
    my %shapes = (
        'Content-Length with Transfer-Encoding' =>
            "GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        'Transfer-Encoding before Content-Length' =>
            "GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        'two different Content-Length values' =>
            "GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\ncontent-length: " . length($next) . "\r\n\r\n",
        'two Host headers' => "GET /api/probe/whoami HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        'a folded header line' => "GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\nX-Note: a\r\n b\r\n\r\n",
        'two Host headers in HTTP/1.0 keep-alive' => "GET /api/probe/whoami HTTP/1.0\r\nHost: a\r\nHost: b\r\nConnection: keep-alive\r\n\r\n",
    );
    for my $shape (sort keys %shapes) {
        my ($in, $closed) = exchange($shapes{$shape} . $next, 5);
        my @res = responses($in);
        is scalar(@res), 1, "$shape: exactly one answer";
        is $res[0]{status}, 400, "$shape: 400";
        is lc($res[0]{headers}{connection} // ''), 'close', "$shape: Connection: close";
        ok $closed, "$shape: the connection is closed";
    }
    # what is not ambiguous still pipelines
    for my $ok ("GET /api/probe/whoami HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
                "POST /api/probe/whoami HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") {
        my @res = responses((exchange($ok . $next, 2, 2))[0]);
        is scalar(@res), 2, 'a plain request and the one behind it are both answered';
    }
};

subtest 'only the first few sid values of a request are looked up' => sub {
    my $stale = 'sid=' . ('0' x 64);
    my $get = sub {
        my @cookies = @_;
        my $req = "GET /api/probe/echo/a/b HTTP/1.1\r\nHost: t\r\n" . join('', map { "Cookie: $_\r\n" } @cookies) . "\r\n";
        my @res = responses((exchange($req, 2, 1))[0]);
        return @res ? $res[0]{status} : 0;
    };
    is $get->($sid), 200, 'the live sid alone';
    is $get->("$stale; theme=dark; $sid"), 200, 'a live sid behind a stale one is found';
    is $get->($stale, $stale, "a=1; $sid"), 200, 'the third sid, in the third Cookie header';
    is $get->(("$stale") x 4, $sid), 401, 'a live sid behind four others is not looked up';
    is $get->((join('; ', ($stale) x 40)) x 60, $sid), 401, 'thousands of sids are answered 401';
    is $get->($sid, (join('; ', ($stale) x 40)) x 60), 200, 'and the first one still counts';
};

subtest 'odd targets: an empty HTTP/2 :path, a %00' => sub {
    # HTTP/2 with prior knowledge on the plain port: one GET whose :path is empty
    my $hpack = "\x82\x86" . "\x04\x00" . "\x01\x09127.0.0.1"; # :method GET, :scheme http, :path "", :authority
    my $frame = sub { my ($type, $flags, $stream, $payload) = @_;
                      pack('NCN', length($payload) << 8 | $type, $flags, $stream) . $payload };
    my $bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . $frame->(4, 0, 0, '') . $frame->(1, 5, 1, $hpack);
    my ($in) = exchange($bytes, 2);
    my ($status, $reset);
    while (length($in) >= 9) {
        my ($len, $type, $flags, $stream) = (unpack('N', "\x00" . substr($in, 0, 3)), unpack('CCN', substr($in, 3, 6)));
        my $payload = substr($in, 9, $len);
        substr($in, 0, 9 + $len, '');
        $reset = 1 if $type == 3 && $stream == 1;
        next unless $type == 1 && $stream == 1;
        my %indexed = (0x88 => 200, 0x89 => 204, 0x8a => 206, 0x8b => 304, 0x8c => 400, 0x8d => 404, 0x8e => 500);
        my $first = ord $payload;
        $status = $indexed{$first} // ($payload =~ /\A[\x08\x48]\x03(\d{3})/ ? $1 : 'other');
    }
    ok $reset || ($status // '') eq '400', 'the empty :path is refused (400 or RST_STREAM), not served index.html'
        or diag "status " . ($status // 'none');

    for my $target ('/..%00/x', '/%00/x', '/a%00b') {
        my @res = responses((exchange("GET $target HTTP/1.1\r\nHost: t\r\n\r\n", 2, 1))[0]);
        ok @res && ($res[0]{status} == 400 || $res[0]{status} == 404), "$target: 400 or 404, no redirect"
            or diag "got $res[0]{status} $res[0]{headers}{location}";
    }
};

subtest 'a WebSocket handshake of another version than 13 gets 426' => sub {
    my $hs = sub {
        my $version = shift;
        my $req = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: $sid\r\n"
                . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                . (defined $version ? "Sec-WebSocket-Version: $version\r\n" : '') . "\r\n";
        my ($in) = exchange($req, 1, 1);
        return $in =~ /\AHTTP\/1\.1 (\d{3})/ ? ($1, $in) : (0, $in);
    };
    for my $v (8, undef) {
        my ($status, $in) = $hs->($v);
        is $status, 426, 'version ' . ($v // 'none') . ': 426';
        like $in, qr/\r\nsec-websocket-version: 13\r\n/i, 'naming version 13';
    }
    my ($status) = $hs->(13);
    is $status, 101, 'version 13 is upgraded';
};

done_testing;
