# The WebSocket protocol as forumd speaks it (RFC 6455), byte by byte over a raw socket: fragmented
# messages, control frames between fragments, frames split across reads, the closing handshake from
# either side, and every malformed frame closed with the right code.
use strict;
use warnings;
use lib '.';
use IO::Socket::INET;
use IO::Select;
use Test::More;
use Time::HiRes qw(time sleep);
use t::Util;

my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)]);
my $cookie = cookie_of(probe_login($server, 1));

# a client frame: masked, with the header fields given
sub frame {
    my (%f) = @_;
    my $payload = $f{payload} // '';
    my $len = length $payload;
    my $b0 = (($f{fin} // 1) ? 0x80 : 0) | ($f{rsv} // 0) << 4 | $f{op};
    my $mask = $f{unmasked} ? '' : pack('N', int rand 2**32);
    my $mbit = $f{unmasked} ? 0 : 0x80;
    my $head = $f{len64} ? pack('CCQ>', $b0, $mbit | 127, $len)
             : $len < 126 ? pack('CC', $b0, $mbit | $len)
             : $len < 65536 ? pack('CCn', $b0, $mbit | 126, $len)
             : pack('CCQ>', $b0, $mbit | 127, $len);
    return $head . $mask . $payload if $f{unmasked};
    my @k = unpack 'C4', $mask;
    my $i = 0;
    (my $masked = $payload) =~ s/(.)/chr(ord($1) ^ $k[$i++ % 4])/gse;
    return $head . $mask . $masked;
}

sub text { frame(op => 1, payload => t::Util::json_encode($_[0]), @_[1 .. $#_]) }

package RawWS {
    sub new {
        my ($class, $port, $cookie) = @_;
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $!;
        print $sock "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: $cookie\r\n\r\n";
        my $self = bless { sock => $sock, buf => '', frames => [], eof => 0 }, $class;
        $self->_fill(5) until $self->{buf} =~ /\r\n\r\n/ || $self->{eof};
        $self->{buf} =~ s/^(.*?)\r\n\r\n//s;
        $self->{response} = $1 // '';
        return $self;
    }
    sub write { my ($self, $bytes) = @_; syswrite $self->{sock}, $bytes }
    sub _fill {
        my ($self, $timeout) = @_;
        return 0 unless IO::Select->new($self->{sock})->can_read($timeout);
        my $n = sysread $self->{sock}, my $chunk, 65536;
        if (!$n) { $self->{eof} = 1; return 0 }
        $self->{buf} .= $chunk;
        return 1;
    }
    # the next server frame: {op, fin, masked, payload}, or undef at EOF or after the timeout
    sub next_frame {
        my ($self, $timeout) = @_;
        my $deadline = Time::HiRes::time() + ($timeout // 5);
        while (1) {
            my $b = $self->{buf};
            if (length $b >= 2) {
                my ($b0, $b1) = unpack 'CC', $b;
                my ($len, $off) = ($b1 & 0x7f, 2);
                ($len, $off) = (unpack('n', substr $b, 2, 2), 4) if $len == 126 && length $b >= 4;
                ($len, $off) = (unpack('Q>', substr $b, 2, 8), 10) if $len == 127 && length $b >= 10;
                if ($len < 126 || $off > 2) {
                    if (length $b >= $off + $len) {
                        substr($self->{buf}, 0, $off + $len) = '';
                        return { op => $b0 & 0x0f, fin => $b0 >> 7, masked => $b1 >> 7, payload => substr($b, $off, $len) };
                    }
                }
            }
            my $left = $deadline - Time::HiRes::time();
            return undef if $left <= 0 || $self->{eof};
            $self->_fill($left);
        }
    }
    # the next text frame of a JSON type, skipping pings and others
    sub next_json {
        my ($self, $type) = @_;
        while (my $f = $self->next_frame) {
            return undef if $f->{op} == 8;
            next unless $f->{op} == 1;
            my $m = t::Util::json_decode($f->{payload});
            return $m if !$type || $m->{type} eq $type;
        }
        return undef;
    }
    # waits for the server's close frame; returns [code, reason] (code undef if none came)
    sub close_frame {
        my ($self) = @_;
        while (my $f = $self->next_frame) {
            next unless $f->{op} == 8;
            my $p = $f->{payload};
            return [length $p >= 2 ? unpack('n', $p) : 0, length $p > 2 ? substr($p, 2) : ''];
        }
        return [undef, ''];
    }
    sub wait_eof {
        my ($self, $timeout) = @_;
        my $deadline = Time::HiRes::time() + $timeout;
        $self->_fill($deadline - Time::HiRes::time()) while !$self->{eof} && Time::HiRes::time() < $deadline;
        return $self->{eof};
    }
}

sub connected {
    my $ws = RawWS->new($server->port, $cookie);
    like $ws->{response}, qr{^HTTP/1\.1 101}, 'upgraded';
    like $ws->{response}, qr{^sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r?$}mi, 'with the accept key of RFC 6455';
    ok $ws->next_json('hello'), 'hello arrives';
    return $ws;
}

subtest 'server frames are unmasked and whole' => sub {
    my $ws = connected();
    $ws->write(text({ type => 'probe.echo', data => 'x' x 60000 }));
    my $f = $ws->next_frame;
    $f = $ws->next_frame while $f && !($f->{op} == 1 && $f->{payload} =~ /probe\.echo/);
    ok $f, 'a reply';
    is $f->{masked}, 0, 'not masked';
    is $f->{fin}, 1, 'in one frame';
    is length(t::Util::json_decode($f->{payload})->{data}), 60000, 'with all of the message';
};

subtest 'a message in fragments, with a ping between them' => sub {
    my $ws = connected();
    my $json = t::Util::json_encode({ type => 'probe.echo', data => 'fragmented' });
    my @parts = (substr($json, 0, 5), substr($json, 5, 10), substr($json, 15));
    $ws->write(frame(op => 1, fin => 0, payload => $parts[0]));
    $ws->write(frame(op => 9, payload => 'are you there'));
    $ws->write(frame(op => 0, fin => 0, payload => $parts[1]));
    $ws->write(frame(op => 0, fin => 0, payload => ''));
    $ws->write(frame(op => 0, fin => 1, payload => $parts[2]));
    my ($pong, $echo);
    while (my $f = $ws->next_frame) {
        $pong = $f if $f->{op} == 10;
        $echo = t::Util::json_decode($f->{payload}) if $f->{op} == 1 && $f->{payload} =~ /probe\.echo/;
        last if $pong && $echo;
    }
    is $pong && $pong->{payload}, 'are you there', 'the ping is answered at once with its payload';
    is $echo && $echo->{data}, 'fragmented', 'the message is put together';
};

subtest 'frames split across reads, and every length encoding' => sub {
    my $ws = connected();
    my $bytes = text({ type => 'probe.echo', data => 'slow' });
    for my $byte (split //, $bytes) {
        $ws->write($byte);
        sleep 0.002;
    }
    is $ws->next_json('probe.echo')->{data}, 'slow', 'one byte at a time';
    $ws->write(text({ type => 'probe.echo', data => 'long form' }, len64 => 1));
    is $ws->next_json('probe.echo')->{data}, 'long form', 'a short payload with a 64-bit length';
    $ws->write(text({ type => 'probe.echo', data => 'z' x 1000 }) x 3);
    is length($ws->next_json('probe.echo')->{data}), 1000, "three frames in one write: $_" for 1 .. 3;
};

subtest 'the closing handshake started by the client' => sub {
    my $ws = connected();
    $ws->write(frame(op => 8, payload => pack('n', 1000) . 'bye'));
    is $ws->close_frame->[0], 1000, 'the server answers with the same code';
    ok $ws->wait_eof(5), 'and closes the connection';

    $ws = connected();
    $ws->write(frame(op => 8));
    my $f = $ws->next_frame;
    $f = $ws->next_frame while $f && $f->{op} != 8;
    is $f && length($f->{payload}), 0, 'an empty close is answered with an empty close';
    ok $ws->wait_eof(5), 'and the connection closed';
};

subtest 'pings read together: the newest one is answered' => sub {
    my $ws = connected();
    $ws->write(join '', map { frame(op => 9, payload => "p$_") } 1 .. 5);
    $ws->write(text({ type => 'ping' }));
    my @pongs;
    while (my $f = $ws->next_frame) {
        push @pongs, $f->{payload} if $f->{op} == 10;
        last if $f->{op} == 1 && $f->{payload} =~ /"pong"/;
    }
    is $pongs[-1], 'p5', 'the last pong carries the newest ping\'s payload';
    ok @pongs >= 1 && @pongs < 5, 'an unsent pong is replaced, not queued again (' . scalar(@pongs) . ' pongs)';
    ok !(grep { !/^p[1-5]$/ } @pongs), 'every pong echoes a ping';
};

subtest 'a close code IANA added (1012) is accepted and echoed' => sub {
    my $ws = connected();
    $ws->write(frame(op => 8, payload => pack('n', 1012)));
    is $ws->close_frame->[0], 1012, 'echoed';
    ok $ws->wait_eof(5), 'and closed';
};

subtest 'the closing handshake started by the server' => sub {
    my $ws = connected();
    $ws->write(text({ type => 'probe.echo', data => 'before' }));
    $ws->write(frame(op => 1, payload => 'not json at all'));
    is $ws->next_json('probe.echo')->{data}, 'before', 'what was sent before is answered';
    is $ws->next_json('error')->{code}, 'bad_request', 'an error frame explains';
    is $ws->close_frame->[0], 1007, 'then the close frame';
    ok !$ws->wait_eof(0.3), 'the server waits for the answer';
    $ws->write(frame(op => 8, payload => pack('n', 1007)));
    ok $ws->wait_eof(5), 'and closes once it has it';
};

my @malformed = (
    ['an unmasked frame', frame(op => 1, payload => '{}', unmasked => 1), 1002],
    ['a reserved bit', frame(op => 1, payload => '{}', rsv => 4), 1002],
    ['a reserved data opcode', frame(op => 3, payload => '{}'), 1002],
    ['a reserved control opcode', frame(op => 11), 1002],
    ['a continuation with nothing to continue', frame(op => 0, payload => '{}'), 1002],
    ['a new message inside a fragmented one', frame(op => 1, fin => 0, payload => '{') . frame(op => 1, payload => '{}'), 1002],
    ['a fragmented ping', frame(op => 9, fin => 0, payload => 'x'), 1002],
    ['a ping over 125 bytes', frame(op => 9, payload => 'p' x 126), 1002],
    ['a close of one byte', frame(op => 8, payload => 'x'), 1002],
    ['a close with a code no peer may send', frame(op => 8, payload => pack('n', 1005)), 1002],
    ['a close reason that is not UTF-8', frame(op => 8, payload => pack('n', 1000) . "\xff\xfe"), 1007],
    ['fragments that add up to more than 64 KiB', frame(op => 1, fin => 0, payload => 'a' x 40000)
         . frame(op => 0, fin => 0, payload => 'a' x 30000), 1009],
    ['a length over 64 KiB, before its payload', substr(frame(op => 1, payload => 'b' x 70000), 0, 14), 1009],
    ['a 64-bit length with its top bit set', pack('CCNN', 0x81, 0xff, 0x80000000, 0) . 'mask', 1002],
);
for my $case (@malformed) {
    my ($name, $bytes, $code) = @$case;
    subtest $name => sub {
        my $ws = connected();
        $ws->write($bytes);
        is $ws->close_frame->[0], $code, "closed with $code";
        ok $ws->wait_eof(5), 'and the connection ends without waiting for the peer';
    };
}

subtest 'the server still serves' => sub {
    my $ws = connected();
    $ws->write(text({ type => 'ping' }));
    ok $ws->next_json('pong'), 'pong';
};

like $server->log, qr/ready/, 'the server ran';
unlike $server->log, qr/AddressSanitizer|runtime error/, 'no sanitizer report';
is $server->stop, 0, 'forumd exits 0';
done_testing;
