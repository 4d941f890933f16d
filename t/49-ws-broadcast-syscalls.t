# A broadcast's system calls, read under strace: every connection gets every frame once and in
# order, each frame costs its connection one write and nothing else: no epoll_ctl per write (libuv's
# uv_write ends with one on the next loop turn; core/ws_queue.c writes plain sockets itself). And a
# broadcast to more connections than a flush slice is written over several loop turns, the loop
# polling in between, so that the loop keeps reading while it writes to everyone online; but one
# connection's backlog, more frames than one write takes, drains while the kernel takes it, without
# waiting a loop turn (or a whole sweep) per write.
use strict;
use warnings;
use lib '.';
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

plan skip_all => 'strace is not installed' unless grep { -x "$_/strace" } split /:/, $ENV{PATH};
# a container may forbid ptrace: then strace cannot trace anything, and there is nothing to read
plan skip_all => 'strace cannot trace here (ptrace is not permitted)' unless system('strace -o /dev/null true >/dev/null 2>&1') == 0;

my ($USERS, $PER_USER, $PUBLISHES) = (20, 5, 5);
my $CONNS = $USERS * $PER_USER;

my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)]);
my $ws_url = 'ws://127.0.0.1:' . $server->port . '/ws';
my @cookies = map { cookie_of(probe_login($server, $_)) } 1 .. $USERS;
my @ws;
for my $i (0 .. $CONNS - 1) {
    my $ws = ws_connect($ws_url, cookie => $cookies[$i % $USERS]);
    die "connection $i: $ws->{error}" if $ws->{error};
    $ws->wait_for('hello') or die "connection $i: no hello";
    push @ws, $ws;
}

# strace follows every thread of the server into a file; the trace has begun once the kernel says so.
# Returns its pid and the file.
my $traces = 0;
sub start_strace {
    my ($calls) = @_;
    my $trace = "$server->{dir}/strace-" . ++$traces . '.out';
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec 'strace', '-f', '-qq', '-s', '48', '-e', "trace=$calls", '-o', $trace, '-p', $server->pid;
        die "exec: $!";
    }
    my $t0 = time;
    sleep 0.05 until (t::Util::slurp('/proc/' . $server->pid . '/status') // '') =~ /^TracerPid:\s*[1-9]/m || time - $t0 > 10;
    like t::Util::slurp('/proc/' . $server->pid . '/status'), qr/^TracerPid:\s*[1-9]/m, 'strace is attached';
    sleep 0.3; # the threads forumd already had are attached one by one after the main one
    return ($pid, $trace);
}

sub stop_strace {
    my ($pid, $trace) = @_;
    kill 'INT', $pid;
    waitpid $pid, 0;
    return split /\n/, t::Util::slurp($trace) // '';
}

my ($strace, $trace) = start_strace('epoll_ctl,write,writev,sendmsg');

for my $n (1 .. $PUBLISHES) {
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/probe/publish', json => { text => "note $n" },
                        headers => ["Cookie: $cookies[0]"]);
    is $res->{status}, 204, "publish $n";
}

subtest 'every connection has every frame, once, in order' => sub {
    my $all = 1;
    for my $i (0 .. $#ws) {
        my @notes;
        while (@notes < $PUBLISHES) {
            my $f = $ws[$i]->next(10) or last;
            push @notes, $f->{text} if ($f->{type} // '') eq 'probe.note';
        }
        $all &&= is_deeply \@notes, [map { "note $_" } 1 .. $PUBLISHES], "connection $i";
    }
    ok $all, "all $CONNS connections";
};

my (%calls, @ctl);
for my $line (stop_strace($strace, $trace)) {
    next unless $line =~ /^(?:\d+\s+)?(epoll_ctl|writev|write|sendmsg)\((\d+)/;
    $calls{$1}++;
    push @ctl, $line if $1 eq 'epoll_ctl';
}
note join ', ', map { "$_: $calls{$_}" } sort keys %calls;

my $deliveries = $CONNS * $PUBLISHES;
# the publishes' own HTTP connections account for a few epoll_ctl each; a write that goes through libuv
# adds one per connection per write, $deliveries in all
cmp_ok $calls{epoll_ctl} // 0, '<', $deliveries / 4, "far fewer epoll_ctl than the $deliveries writes"
    or diag join "\n", @ctl[0 .. ($#ctl < 20 ? $#ctl : 20)];
cmp_ok(($calls{writev} // 0) + ($calls{write} // 0) + ($calls{sendmsg} // 0), '>=', $deliveries, 'at least one write per delivery');

subtest 'a broadcast to more connections than a slice: the loop polls between slices' => sub {
    # raw sockets: many connections cost the test little; the frames wait in their receive buffers
    my $n = 1100;
    my (@raw, %buf);
    for my $i (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port, Proto => 'tcp') or die "connect: $!";
        print $s "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" . $server->port . "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: $cookies[$i % $USERS]\r\n\r\n";
        $s->blocking(0);
        push @raw, $s;
    }
    my $read_until = sub {
        my ($what) = @_;
        my $sel = IO::Select->new(grep { index($buf{$_} // '', $what) < 0 } @raw);
        my $t0 = time;
        while ($sel->count && time - $t0 < 30) {
            for my $s ($sel->can_read(1)) {
                my $got = sysread($s, my $chunk, 65536);
                $buf{$s} .= $chunk if $got;
                $sel->remove($s) if !defined($got) && !$!{EAGAIN} || defined $got && $got == 0 || index($buf{$s}, $what) >= 0;
            }
        }
        return scalar grep { index($buf{$_} // '', $what) >= 0 } @raw;
    };
    is $read_until->('"type":"hello"'), $n, "$n connections up";

    my ($pid, $file) = start_strace('epoll_wait,epoll_pwait,writev,write');
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/probe/publish', json => { text => 'to everyone' },
                        headers => ["Cookie: $cookies[0]"]);
    is $res->{status}, 204, 'published';
    is $read_until->('to everyone'), $n, 'every raw connection has it';
    $_->wait_for('probe.note') for @ws;
    my @lines = stop_strace($pid, $file);
    my @writes = grep { $lines[$_] =~ /writev?\(.*probe\.note/ } 0 .. $#lines;
    cmp_ok scalar @writes, '>=', $n + $CONNS, 'one write per connection';
    my $polls = @writes ? grep { $lines[$_] =~ /epoll_p?wait\(/ } $writes[0] .. $writes[-1] : 0;
    cmp_ok $polls, '>=', 1, "the loop polled between the slices of the broadcast ($polls times)";
    is scalar(grep { my $b = $buf{$_}; my $c = () = $b =~ /to everyone/g; $c != 1 } @raw), 0, 'each raw connection has it once';
    close $_ for @raw;
};

subtest 'a backlog drains in consecutive writes, while the kernel takes them' => sub {
    my $frames = 200; # over three times what one write carries
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $server->port, Proto => 'tcp') or die "connect: $!";
    print $s "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" . $server->port . "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: $cookies[0]\r\n\r\n";
    my $in = '';
    my $t0 = time;
    while (index($in, '"type":"hello"') < 0 && time - $t0 < 10) {
        sysread($s, my $chunk, 65536) or last;
        $in .= $chunk;
    }
    like $in, qr/"type":"hello"/, 'up';
    # every echo frame in one client write: one read, one loop turn, $frames answers queued at once
    my $bytes = '';
    for my $i (1 .. $frames) {
        my $payload = qq({"type":"probe.echo","data":"backlog $i"});
        $bytes .= pack('CC', 0x81, 0x80 | length $payload) . "\0\0\0\0" . $payload; # a zero mask leaves it as it is
    }
    my ($pid, $file) = start_strace('epoll_wait,epoll_pwait,writev,write');
    print $s $bytes;
    $in = '';
    $t0 = time;
    while (index($in, "backlog $frames\"") < 0 && time - $t0 < 10) {
        sysread($s, my $chunk, 65536) or last;
        $in .= $chunk;
    }
    my @got = $in =~ /"data":"backlog (\d+)"/g;
    is_deeply \@got, [1 .. $frames], 'every answer, once, in order';
    my @lines = stop_strace($pid, $file);
    my @writes = grep { $lines[$_] =~ /writev?\(.*probe\.echo/ } 0 .. $#lines;
    cmp_ok scalar @writes, '>', 1, 'more than one write (' . scalar(@writes) . ')';
    # the answers may come from more than one read, so more than one loop turn; but a turn's backlog goes out
    # in writes that follow each other (a write per loop turn would put a poll between every two)
    my $chained = grep { $writes[$_] + 1 == $writes[$_ + 1] } 0 .. $#writes - 1;
    cmp_ok $chained, '>=', 1, "writes that follow the one before with no poll between ($chained)"
        or diag join "\n", map { substr($_, 0, 120) } @lines[$writes[0] .. $writes[-1]];
    close $s;
};

$_->close for @ws;
$server->stop;
done_testing;
