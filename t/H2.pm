# A raw HTTP/2 client over TLS (ALPN h2) with hand-built frames, for what no well-behaved client does:
# a flow-control window left at 0, streams reset as soon as they are opened. Header blocks use HPACK
# literals without indexing or Huffman coding, which every decoder must accept.
package t::H2;
use strict;
use warnings;
use IO::Socket::SSL;
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

use constant { DATA => 0, HEADERS => 1, RST_STREAM => 3, SETTINGS => 4, PING => 6, GOAWAY => 7, WINDOW_UPDATE => 8 };

# t::H2->connect(port => N, window => BYTES): the preface and a SETTINGS frame (push off, the given
# initial window for streams).
sub connect {
    my ($class, %o) = @_;
    my $sock = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $o{port}, SSL_verify_mode => SSL_VERIFY_NONE,
                                    SSL_alpn_protocols => ['h2'], Timeout => 10)
        or die "h2 connect: $SSL_ERROR";
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);    # small frames go out at once: latencies are the server's
    die 'h2: the server did not choose h2' unless ($sock->alpn_selected // '') eq 'h2';
    my $self = bless { sock => $sock, next_id => 1, in => '' }, $class;
    my $settings = pack('nN', 2, 0);                                        # ENABLE_PUSH 0
    $settings .= pack('nN', 4, $o{window}) if defined $o{window};          # INITIAL_WINDOW_SIZE
    $self->write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . frame(SETTINGS, 0, 0, $settings));
    return $self;
}

sub frame {
    my ($type, $flags, $id, $payload) = @_;
    my $len = length $payload;
    return pack('CnCCN', $len >> 16, $len & 0xffff, $type, $flags, $id) . $payload;
}

sub _int {    # HPACK integer with an N-bit prefix
    my ($first, $bits, $v) = @_;
    my $max = (1 << $bits) - 1;
    return chr($first | $v) if $v < $max;
    my $s = chr($first | $max);
    $v -= $max;
    while ($v >= 128) { $s .= chr(($v & 127) | 128); $v >>= 7 }
    return $s . chr($v);
}

# a literal header field without indexing whose name is the static table's entry $idx
sub _lit { my ($idx, $v) = @_; _int(0, 4, $idx) . _int(0, 7, length $v) . $v }

# The frame of a GET (HEADERS with END_STREAM and END_HEADERS; with post => 1 a POST whose body never
# comes) on a new stream; returns ($id, $bytes).
sub get_frame {
    my ($self, $path, %o) = @_;
    my $id = $self->{next_id};
    $self->{next_id} += 2;
    # :method GET (or POST), :scheme https, :path, :authority
    my $block = ($o{post} ? "\x83" : "\x82") . "\x87" . _lit(4, $path) . _lit(1, '127.0.0.1');
    $block .= _lit(32, $o{cookie}) if $o{cookie};
    # a POST's body is left to come (no END_STREAM): its request never reaches a handler
    return ($id, frame(HEADERS, $o{post} ? 0x4 : 0x5, $id, $block));
}

sub rst_frame { my ($self, $id) = @_; frame(RST_STREAM, 0, $id, pack('N', 8)) }    # CANCEL

sub write {
    my ($self, $bytes) = @_;
    while (length $bytes) {
        my $n = syswrite($self->{sock}, $bytes);
        return 0 unless defined $n && $n > 0;
        substr($bytes, 0, $n, '');
    }
    return 1;
}

# The next frame as {type, flags, id, payload}; undef at end of stream or after $timeout seconds.
sub read_frame {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        if (length $self->{in} >= 9) {
            my ($hi, $lo, $type, $flags, $id) = unpack('CnCCN', $self->{in});
            my $len = ($hi << 16) | $lo;
            if (length $self->{in} >= 9 + $len) {
                my $payload = substr($self->{in}, 9, $len);
                substr($self->{in}, 0, 9 + $len, '');
                return { type => $type, flags => $flags, id => $id & 0x7fffffff, payload => $payload };
            }
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        # TLS may hold decrypted bytes the descriptor no longer shows
        if (!$self->{sock}->pending) {
            return undef unless IO::Select->new($self->{sock})->can_read($left);
        }
        my $n = sysread($self->{sock}, my $buf, 65536);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EWOULDBLOCK} || $SSL_ERROR == SSL_WANT_READ;
            $self->{eof} = 1;
            return undef;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            return undef;
        }
        $self->{in} .= $buf;
    }
}

# Reads (acknowledging SETTINGS and PING) until a GOAWAY or the end of the connection, or $timeout
# seconds. Returns 'goaway:CODE', 'eof' or undef. With until_eof, a GOAWAY is noted and reading goes on
# to the end: ('eof', 'goaway:CODE' or undef).
sub wait_closed {
    my ($self, $timeout, %o) = @_;
    my $deadline = time + $timeout;
    my $goaway;
    while (time < $deadline) {
        my $f = $self->read_frame($deadline - time);
        return $o{until_eof} ? ('eof', $goaway) : 'eof' if $self->{eof};
        next unless $f;
        if ($f->{type} == GOAWAY) {
            $goaway = 'goaway:' . unpack('x4N', $f->{payload});
            return $goaway unless $o{until_eof};
        }
        $self->write(frame(SETTINGS, 1, 0, '')) if $f->{type} == SETTINGS && !($f->{flags} & 1);
        $self->write(frame(PING, 1, 0, $f->{payload})) if $f->{type} == PING && !($f->{flags} & 1);
    }
    return $o{until_eof} ? (undef, $goaway) : undef;
}

# Rapid reset: $n streams, each a GET ($path) at once cancelled, in batches of $batch pairs each
# followed by a PING whose answer says the server has read the batch; stops at the first GOAWAY (as a
# client must). Returns ('goaway:CODE' or 'eof' or undef, pairs sent).
sub rapid_reset {
    my ($self, $path, $n, %o) = @_;
    my $batch = $o{batch} // 10;
    my $sent = 0;
    while ($sent < $n) {
        my $bytes = '';
        for (1 .. $batch) {
            my ($id, $h) = $self->get_frame($path, %o);
            $bytes .= $h . $self->rst_frame($id);
        }
        $sent += $batch;
        $self->write($bytes . frame(PING, 0, 0, pack('NN', 0, $sent))) or return ('eof', $sent);
        while (1) {
            my $f = $self->read_frame($o{timeout} // 10);
            return ($self->{eof} ? 'eof' : undef, $sent) unless $f;
            return ('goaway:' . unpack('x4N', $f->{payload}), $sent) if $f->{type} == GOAWAY;
            $self->write(frame(SETTINGS, 1, 0, '')) if $f->{type} == SETTINGS && !($f->{flags} & 1);
            last if $f->{type} == PING && ($f->{flags} & 1);
        }
    }
    return (undef, $sent);
}

# One GET answered in full: returns (status, body bytes). The window stays open for it.
sub get {
    my ($self, $path, %o) = @_;
    my ($id, $bytes) = $self->get_frame($path, %o);
    $self->write($bytes);
    my ($status, $body) = (undef, 0);
    while (my $f = $self->read_frame($o{timeout} // 10)) {
        $self->write(frame(SETTINGS, 1, 0, '')) if $f->{type} == SETTINGS && !($f->{flags} & 1);
        return ('goaway', unpack('x4N', $f->{payload})) if $f->{type} == GOAWAY;
        next unless $f->{id} == $id;
        return ('reset', $body) if $f->{type} == RST_STREAM;
        if ($f->{type} == HEADERS) {
            # the server's first answer starts with ":status" from the static table (0x88 is 200) or a literal
            # ":status" from the static table (0x88 is 200); other codes may be Huffman-coded or indexed
            # dynamically, and are reported as 'other'
            my $b = ord $f->{payload};
            $status = $b >= 0x88 && $b <= 0x8e ? (200, 204, 206, 304, 400, 404, 500)[$b - 0x88] : 'other';
        } elsif ($f->{type} == DATA) {
            $body += length $f->{payload};
            # give the bytes back at once, to the stream and to the connection
            my $len = length $f->{payload};
            $self->write(frame(WINDOW_UPDATE, 0, 0, pack('N', $len)) . frame(WINDOW_UPDATE, 0, $id, pack('N', $len))) if $len;
        }
        return ($status, $body) if $f->{flags} & 1;
    }
    return (undef, $body);
}

sub close { my ($self) = @_; $self->{sock}->close(SSL_fast_shutdown => 1) if $self->{sock} }

1;
