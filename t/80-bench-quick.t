# bench/run in QUICK mode: the benchmark tools run end to end at tiny sizes, and everything they verify
# holds (every chat message arrived exactly once and in order, every idle connection answered its ping,
# every broadcast reached every client, every lobby message reached every client once and in order and a
# batch that arrived in one loop turn left in one write per connection, the JSON file has every figure). Speed is never judged here.
# The feed, chat and growth figures are measured on PostgreSQL too (bench/run starts a private cluster), and
# the same checks hold there; so do those of several nodes over PostgreSQL and a private Redis.
# The tools come from the build under test (FORUMD_BUILD: build, or build-asan in the sanitizer run).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time);
use t::Util qw(root_dir build_dir json_decode slurp);

for my $t (qw(wrk h2load taskset prlimit)) {
    plan skip_all => "$t is not installed" unless grep { -x "$_/$t" } split /:/, $ENV{PATH};
}
# the tools are part of every build (CMakeLists.txt): missing ones are a failure, not a reason to skip
for my $t (qw(wsload seed lobbyload wsfloor)) {
    BAIL_OUT(build_dir() . "/tools/$t is not built") unless -x build_dir() . "/tools/$t";
}

my $dir = tempdir(CLEANUP => 1);
my $out = "$dir/bench.json";
my $t0 = time;
my $pid = open(my $fh, '-|') // die "fork: $!";
if ($pid == 0) {
    open STDERR, '>&', \*STDOUT or die $!;
    chdir root_dir() or die $!;
    exec 'timeout', '-k', '10', '240', 'bench/run', '--quick', '--out', $out;
    die "exec: $!";
}
my $log = do { local $/; <$fh> } // '';
close $fh;
my $code = $? >> 8;
is $code, 0, 'bench/run --quick exits 0' or diag $log;
note sprintf('bench/run --quick took %.1f s', time - $t0);

my $r = eval { json_decode(slurp($out)) };
ok $r, 'the JSON file was written' or do { diag $log; done_testing; exit };

my $m = $r->{machine};
ok $m->{nproc} >= 1 && length($m->{model}) && length($m->{kernel}) && $m->{date} =~ /^\d{4}-\d\d-\d\dT/, 'the machine is described';
ok $r->{quick}, 'marked as a quick run';

my $f = $r->{figures};
for my $name (qw(feed chat_throughput chat_latency idle broadcast login_isolation growth lobby lobby_sustained
                  feed_postgres chat_throughput_postgres chat_latency_postgres growth_postgres cluster)) {
    ok $f->{$name} && !$f->{$name}{error}, "$name ran" or diag explain $f->{$name};
}

for my $on ('', '_postgres') {
subtest "feed$on" => sub {
    my $x = $f->{"feed$on"};
    for my $k (qw(h1_api_rps h1_static_rps h2_api_rps h2_static_rps)) {
        ok defined $x->{$k} && $x->{$k} > 0, "$k > 0";
    }
    ok defined $x->{h1_ratio} && defined $x->{h2_ratio}, 'both ratios';
    ok $x->{ok}, 'no request failed';
};
}

for my $name (qw(chat_throughput chat_latency chat_throughput_postgres chat_latency_postgres)) {
    subtest $name => sub {
        my $x = $f->{$name};
        ok $x->{verified}, 'verified: every message reached sender and recipient exactly once, in order';
        is $x->{missing}, 0, 'none missing';
        is $x->{duplicates}, 0, 'none doubled';
        is $x->{out_of_order}, 0, 'none out of order';
        ok $x->{sent} > 0, 'messages were sent';
        for my $run (@{ $r->{details}{$name} }) {
            is $run->{exit}, 0, 'wsload exited 0';
            is $run->{acked}, $run->{sent}, 'every message acknowledged';
            is $run->{delivered}, $run->{sent}, 'every message delivered';
        }
    };
}
for my $on ('', '_postgres') {
    ok defined $f->{"chat_throughput$on"}{messages_per_s}, "chat throughput$on figure";
    ok defined $f->{"chat_latency$on"}{$_}, "chat latency$on $_" for qw(p50_ms p99_ms p999_ms max_ms);
}
ok defined $f->{chat_throughput_postgres}{database_cpu_pct}, 'PostgreSQL\'s CPU during the chat run';

subtest 'several nodes' => sub {
    my $x = $f->{cluster};
    for my $n (1, 2) {
        ok $x->{"chat_${n}_nodes_verified"}, "chat over $n node(s): every message reached both users exactly once, in order";
        ok $x->{"chat_${n}_nodes_per_s"} > 0, 'at a rate';
        is $x->{"chat_${n}_nodes_gaps"}, 0, 'every message went whole, in its announcement: no node gave one up';
        ok $x->{"lobby_${n}_nodes_verified"}, "the lobby over $n node(s): every round reached every client, once";
    }
    ok $x->{idle_all_answered}, 'every idle connection on the three nodes answered its ping';
    is $x->{idle_pongs}, $x->{idle_connections}, 'one pong per connection';
    is scalar(@{ $x->{idle_rss_per_conn_kib} }), 3, 'memory per connection measured on each node';
};

subtest 'idle' => sub {
    my $x = $f->{idle};
    ok $x->{all_answered}, 'every idle connection answered its ping';
    is $x->{pongs}, $x->{connections}, 'one pong per connection';
    ok defined $x->{rss_per_conn_kib}, 'memory per connection measured';
};

subtest 'broadcast' => sub {
    my $x = $f->{broadcast};
    ok $x->{all_delivered}, 'every post.created reached every client, once';
    ok defined $x->{p95_ms}, 'p95 measured';
};

subtest 'lobby' => sub {
    my $x = $f->{lobby};
    ok $x->{all_delivered}, 'every round reached every client, on forumd and on the floor';
    is $x->{duplicates}, 0, 'none doubled';
    ok $x->{frame_payload_bytes} > 0, 'the floor wrote frames of the size forumd\'s had';
    ok defined $x->{p95_ms} && defined $x->{floor_p95_ms} && defined $x->{ratio_p95}, 'last delivery on both, and the ratio';
    for my $run (@{ $r->{details}{lobby}{forumd} }, @{ $r->{details}{lobby}{floor} }) {
        is $run->{deliveries}, $run->{rounds_complete} * $run->{up}, 'one copy per client per round';
    }
};

subtest 'lobby sustained' => sub {
    my $x = $f->{lobby_sustained};
    ok $x->{verified}, 'verified';
    is $x->{missing}, 0, 'none missing';
    is $x->{duplicates}, 0, 'none doubled';
    is $x->{out_of_order}, 0, 'none out of order';
    for my $run (@{ $r->{details}{lobby_sustained}{runs} }, @{ $r->{details}{lobby_sustained}{turn} }) {
        is $run->{deliveries}, $run->{sent} * $run->{up}, 'every message reached every client';
    }
    # a batch is one client write, so one read and one loop turn on the server: one write per connection
    # carries it (a write per frame would make this the batch size); the database's own writes add a little
    cmp_ok $x->{turn_writes_per_conn_per_batch}, '<', 1.5, 'a loop turn\'s frames leave in one write per connection';
};

subtest 'login isolation' => sub {
    my $x = $f->{login_isolation};
    ok defined $x->{p99_without_ms} && defined $x->{p99_with_ms} && defined $x->{ratio}, 'p99 with and without logins';
    ok $x->{logins_ok} > 0, 'logins succeeded';
    ok $x->{ok}, 'no request failed; logins answered 200 or 503 only';
};

for my $on ('', '_postgres') {
subtest "growth$on" => sub {
    my $x = $f->{"growth$on"};
    for my $page (qw(feed history)) {
        ok defined $x->{"${page}_small_p50_ms"} && defined $x->{"${page}_large_p50_ms"}, "$page latency at both sizes";
        ok defined $x->{"${page}_p50_ratio"}, "$page ratio";
    }
    ok $x->{ok}, 'no request failed';
};
}

done_testing;
