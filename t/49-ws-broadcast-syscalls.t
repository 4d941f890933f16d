# A broadcast's system calls, counted under strace: every connection gets every frame once and in
# order, each frame costs its connection one write and nothing else: no epoll_ctl per write (libuv's
# uv_write ends with one on the next loop turn; core/ws_queue.c writes plain sockets itself).
use strict;
use warnings;
use lib '.';
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

plan skip_all => 'strace is not installed' unless grep { -x "$_/strace" } split /:/, $ENV{PATH};

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

# strace follows every thread of the server into a file; the trace has begun once the kernel says so
my $trace = "$server->{dir}/strace.out";
my $strace = fork // die "fork: $!";
if ($strace == 0) {
    open STDERR, '>', '/dev/null';
    exec 'strace', '-f', '-qq', '-e', 'trace=epoll_ctl,write,writev,sendmsg', '-o', $trace, '-p', $server->pid;
    die "exec: $!";
}
my $t0 = time;
sleep 0.05 until (t::Util::slurp('/proc/' . $server->pid . '/status') // '') =~ /^TracerPid:\s*[1-9]/m || time - $t0 > 10;
like t::Util::slurp('/proc/' . $server->pid . '/status'), qr/^TracerPid:\s*[1-9]/m, 'strace is attached';
sleep 0.3; # the threads forumd already had are attached one by one after the main one

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

kill 'INT', $strace;
waitpid $strace, 0;
my (%calls, @ctl);
for my $line (split /\n/, t::Util::slurp($trace) // '') {
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

$_->close for @ws;
$server->stop;
done_testing;
