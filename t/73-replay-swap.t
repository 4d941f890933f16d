# The replay of /ws?after= over many messages: it survives a swap of chat in mid-replay (nothing twice,
# nothing out of order, nothing skipped, live messages only through the replay while it catches up), and
# it is paced by what the client reads: a client that stops reading for seconds is not closed as slow.
#
# The replaying client is a raw socket whose reading the test controls: while it does not read, the
# server's send queue to it fills up and the replay has to wait.
use strict;
use warnings;
use lib '.';
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $MESSAGES = 150_000; # enough that a replay sent with no regard to the client takes seconds
my $build = build_dir();

# --- a database with two users, $MESSAGES messages between them and a session each ---
my $tmp = tempdir(CLEANUP => 1);
my $template = "$tmp/template.db";
{
    my $s = spawn_forumd(db => $template);
    is $s->stop, 0, 'a database with forumd\'s schema';
}
my $seeded = `$build/tools/seed @{[ map { "'$_'" } seed_db_args($template) ]} --users 2 --messages $MESSAGES --pairs 1 --sessions 2 --cookies $tmp/cookies`;
my ($first_user) = $seeded =~ /"first_user":(\d+)/ or seed_failed("seed failed: $seeded");
my @cookie = split /\n/, slurp("$tmp/cookies");
my ($reader, $writer) = ($first_user, $first_user + 1); # session 0 is the first user's, session 1 the second's

sub fresh_db {
    my $name = shift;
    db_copy($template, "$tmp/$name.db");
    return "$tmp/$name.db";
}

# --- a WebSocket client on a raw socket: it reads only when told to ---

package RawWS {
    use IO::Select;
    use Socket qw(SOL_SOCKET SO_RCVBUF inet_aton pack_sockaddr_in);

    sub connect {
        my ($class, $port, $path, $cookie) = @_;
        my $sock = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
        # a small receive window, so that what the client does not read stays in the server's queue
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, pack('i', 16384)) or die "SO_RCVBUF: $!";
        $sock->connect(pack_sockaddr_in($port, inet_aton('127.0.0.1'))) or die "connect: $!";
        $sock->blocking(0);
        my $self = bless { sock => $sock, buf => '', ids => [], client_ids => {}, other => [], closed => undef }, $class;
        my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: $cookie\r\n\r\n";
        syswrite($sock, $req) == length $req or die "write: $!";
        my $deadline = time + 10;
        while ($self->{buf} !~ /\r\n\r\n/ && time < $deadline) {
            $self->_fill(0.5) or last;
        }
        $self->{buf} =~ s/\A(HTTP\/1\.1 (\d+)[^\r]*\r\n.*?\r\n\r\n)//s or die "no upgrade response";
        $self->{status} = $2;
        $self->_parse;
        return $self;
    }

    # Reads what the socket has within `timeout` seconds; false at the end of the stream.
    sub _fill {
        my ($self, $timeout) = @_;
        return 1 unless IO::Select->new($self->{sock})->can_read($timeout);
        my $n = sysread($self->{sock}, $self->{buf}, 1 << 20, length $self->{buf});
        return 1 if !defined $n && $!{EAGAIN};
        if (!$n) {
            $self->{closed} //= [1006, 'connection dropped'];
            return 0;
        }
        return 1;
    }

    # Takes the whole frames off the buffer: message ids in arrival order, other frames by type.
    sub _parse {
        my $self = shift;
        my ($buf, $off) = (\$self->{buf}, 0);
        my $size = length $$buf;
        while ($size - $off >= 2) {
            my ($b0, $b1) = unpack('CC', substr($$buf, $off, 2));
            my ($len, $hl) = ($b1 & 0x7f, 2);
            if ($len == 126) {
                last if $size - $off < 4;
                ($len, $hl) = (unpack('n', substr($$buf, $off + 2, 2)), 4);
            } elsif ($len == 127) {
                last if $size - $off < 10;
                ($len, $hl) = (unpack('Q>', substr($$buf, $off + 2, 8)), 10);
            }
            last if $size - $off - $hl < $len;
            my $payload = substr($$buf, $off + $hl, $len);
            $off += $hl + $len;
            my $opcode = $b0 & 0x0f;
            if ($opcode == 8) {
                my ($code, $reason) = $len >= 2 ? (unpack('n', $payload), substr($payload, 2)) : (1005, '');
                $self->{closed} //= [$code, $reason];
            } elsif ($opcode == 1) {
                if ($payload =~ /\A\{"type":"message","message":\{"id":(\d+),/) {
                    my $id = $1 + 0;
                    push @{ $self->{ids} }, $id;
                    $self->{client_ids}{$id} = $1 if $payload =~ /"client_id":"([^"]*)"/;
                } else {
                    my ($type) = $payload =~ /"type":"([^"]*)"/;
                    push @{ $self->{other} }, $type // '?';
                }
            }
        }
        substr($$buf, 0, $off) = '';
    }

    # Sends a text frame, masked as a client must.
    sub send_text {
        my ($self, $text) = @_;
        my $len = length $text;
        my $head = pack('C', 0x81) . ($len < 126 ? pack('C', 0x80 | $len) : pack('Cn', 0x80 | 126, $len));
        my $mask = pack('N', int rand 0xffffffff);
        my $frame = $head . $mask . ($text ^ substr($mask x (int($len / 4) + 1), 0, $len));
        my $sel = IO::Select->new($self->{sock});
        while (length $frame) {
            $sel->can_write(5) or die 'cannot write';
            my $n = syswrite($self->{sock}, $frame);
            die "write: $!" if !defined $n && !$!{EAGAIN};
            substr($frame, 0, $n) = '' if $n;
        }
    }

    # Reads until `cond` holds, the connection ends, or nothing arrives for `idle` seconds.
    sub read_until {
        my ($self, $cond, $idle) = @_;
        my $last = time;
        until ($cond->() || $self->{closed}) {
            my $had = length $self->{buf};
            $self->_fill(0.2) or last;
            $last = time if length $self->{buf} != $had;
            $self->_parse;
            last if time - $last > ($idle // 10);
        }
        $self->_parse;
    }
}

package main;

sub status_of {
    my ($server, $name) = @_;
    my $st = curl_json('curl -s', 'GET', $server->url . '/_status')->{json};
    return (grep { $_->{name} eq $name } @{ $st->{plugins} })[0];
}

sub swap_chat {
    my ($server, $src, $generation) = @_;
    copy($src, "$server->{plugin_dir}/.chat.so.new") or die "copy: $!";
    rename "$server->{plugin_dir}/.chat.so.new", "$server->{plugin_dir}/chat.so" or die "rename: $!";
    my $deadline = time + 15;
    sleep 0.05 while status_of($server, 'chat')->{generation} < $generation && time < $deadline;
    return status_of($server, 'chat')->{generation};
}

# Every id once, in increasing order: how many were twice and how many came after a bigger one.
sub order_report {
    my @ids = @_;
    my %seen;
    my ($twice, $backwards) = (0, 0);
    for my $i (0 .. $#ids) {
        $twice++ if $seen{ $ids[$i] }++;
        $backwards++ if $i > 0 && $ids[$i] <= $ids[$i - 1];
    }
    return ($twice, $backwards);
}

subtest 'a swap of chat in mid-replay: every message once, in order, none live before its turn' => sub {
    # a queue bound far above the replay, so that only the swap is under test here, not the pacing
    my $server = spawn_forumd(db => fresh_db('swap'), watch => 1, limits => { 'ws-send-queue' => '256MiB' },
                              plugin_files => { chat => "$build/plugins/chat.so" });
    my $a = RawWS->connect($server->port, '/ws?after=0', $cookie[0]);
    is $a->{status}, 101, 'the replaying client is upgraded';
    $a->read_until(sub { @{ $a->{ids} } >= 1000 });
    ok @{ $a->{ids} } >= 1000, 'it has read the start of its replay, and stops reading';

    my $b = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => $cookie[1]);
    $b->wait_for('hello');
    my @live;
    for my $round ([2, "$build/t-plugins/chat_v2.so"], [3, "$build/plugins/chat.so"]) {
        my ($generation, $file) = @$round;
        is swap_chat($server, $file, $generation), $generation, "chat swapped in mid-replay (generation $generation)";
        for my $k (1 .. 10) {
            $b->send({ type => 'message.send', to => $reader, body => "live $generation.$k", client_id => "live-$generation-$k" });
            my $m = $b->wait_for('message', 10);
            push @live, $m->{message}{id} if $m;
        }
    }
    is scalar @live, 20, 'twenty live messages were sent to the replaying client meanwhile';

    my $want = $MESSAGES + @live;
    $a->read_until(sub { @{ $a->{ids} } >= $want }, 15);
    $a->read_until(sub { 0 }, 1); # and nothing more comes
    my @got = @{ $a->{ids} };
    my ($twice, $backwards) = order_report(@got);
    is(($a->{closed} // [])->[1], undef, 'the replaying client stayed connected');
    is $twice, 0, 'no message twice';
    is $backwards, 0, 'in increasing id order';
    is scalar @got, $want, "every message: $MESSAGES replayed and 20 live";
    is $got[-1], $live[-1], 'ending with the newest live message';
    my %got = map { $_ => 1 } @got;
    is scalar(grep { !$got{$_} } @live), 0, 'every live message among them';

    # caught up: live delivery again, once
    $b->send({ type => 'message.send', to => $reader, body => 'after the replay', client_id => 'after' });
    my $after = $b->wait_for('message', 10)->{message}{id};
    $a->read_until(sub { @{ $a->{ids} } > $want });
    is_deeply [@{ $a->{ids} }[$want .. $#{ $a->{ids} }]], [$after], 'after it, live messages arrive live';
    $b->close;
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'a client that stops reading in mid-replay is waited for, not closed as slow' => sub {
    # a small queue bound and a short grace: a replay that sent regardless of the client would close it
    my $server = spawn_forumd(db => fresh_db('pause'), limits => { 'ws-send-queue' => '64KiB', 'ws-slow-grace' => '0.5' });
    my $a = RawWS->connect($server->port, '/ws?after=0', $cookie[0]);
    is $a->{status}, 101, 'upgraded';
    $a->read_until(sub { @{ $a->{ids} } >= 1000 });
    ok @{ $a->{ids} } >= 1000, 'the client has read the start of its replay';
    sleep 3; # and reads nothing for three seconds
    $a->read_until(sub { @{ $a->{ids} } >= $MESSAGES }, 15);
    my @got = @{ $a->{ids} };
    my ($twice, $backwards) = order_report(@got);
    is(($a->{closed} // [])->[1], undef, 'it was not closed as too slow');
    is scalar @got, $MESSAGES, 'it got every message';
    is $twice, 0, 'once';
    is $backwards, 0, 'in order';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'a message sent again (its client_id) in mid-replay comes in its turn, once' => sub {
    # the client's unacknowledged message is the newest; it reconnects far behind it and sends it again
    my $server = spawn_forumd(db => fresh_db('repeat'), limits => { 'ws-send-queue' => '64KiB' });
    my $w = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => $cookie[0]);
    $w->wait_for('hello');
    my $send = { type => 'message.send', to => $writer, body => 'sent twice', client_id => 'unacknowledged' };
    $w->send($send);
    my $newest = $w->wait_for('message', 10)->{message}{id};
    $w->close;

    my $a = RawWS->connect($server->port, '/ws?after=0', $cookie[0]);
    is $a->{status}, 101, 'upgraded';
    $a->read_until(sub { @{ $a->{ids} } >= 1000 });
    ok @{ $a->{ids} } < $MESSAGES, 'the client has read the start of its replay, and stops reading';
    $a->send_text(json_encode($send));
    sleep 1; # the server takes the frame while its replay waits for the client
    $a->read_until(sub { @{ $a->{ids} } >= $MESSAGES + 1 }, 15);
    $a->read_until(sub { 0 }, 1); # and nothing more comes
    my @got = @{ $a->{ids} };
    my ($twice, $backwards) = order_report(@got);
    is(($a->{closed} // [])->[1], undef, 'it stayed connected');
    is $twice, 0, 'no message twice';
    is $backwards, 0, 'in increasing id order';
    is scalar @got, $MESSAGES + 1, 'every message';
    is $got[-1], $newest, 'the message sent again last, in its turn';
    is $a->{client_ids}{$newest}, 'unacknowledged', 'with its client_id, the acknowledgement the client waits for';
    is scalar(grep { $_ eq 'error' } @{ $a->{other} }), 0, 'and no error';
    is $server->stop, 0, 'forumd exits 0';
};

done_testing;
