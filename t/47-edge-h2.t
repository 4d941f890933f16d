# What one HTTP/2 connection can make forumd hold and do: a client that never opens its flow-control
# window keeps at most limits.conn-pending bytes of answers in the server and is closed after
# limits.send-timeout without progress; a client that opens and resets streams faster than
# limits.h2-stream-rate/-burst gets a GOAWAY (ENHANCE_YOUR_CALM). A normal client is served throughout.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;
use t::H2;

BAIL_OUT(build_dir() . '/tools/seed is not built') unless -x build_dir() . '/tools/seed';

# a database whose feed page (50 posts of 20,000 characters) is about 1 MB, and one session to read it
my $dir = tempdir(CLEANUP => 1);
my $db = "$dir/forum.db";
spawn_forumd(db => $db)->stop;
system(build_dir() . '/tools/seed', seed_db_args($db), '--users', 2, '--posts', 60, '--body-size', 20000, '--sessions', 1,
       '--cookies', "$dir/cookies") == 0 or seed_failed('seed failed');
my ($cookie) = grep { length } split /\n/, slurp("$dir/cookies");
my $feed = '/api/posts?limit=50';

sub rss_kib {
    my ($pid) = @_;
    return slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)/m ? $1 : die 'no VmRSS';
}

# A normal client: its window open, it gets the whole feed page.
sub normal_get {
    my ($server) = @_;
    my $c = t::H2->connect(port => $server->tls_port);
    my ($status, $bytes) = $c->get($feed, cookie => $cookie, timeout => 20);
    $c->close;
    return ($status // 'none', $bytes);
}

# Connections that open no window: 100 GETs of the feed page each, and never a byte read.
sub stalled_clients {
    my ($server, $n) = @_;
    my @conns;
    for (1 .. $n) {
        my $c = t::H2->connect(port => $server->tls_port, window => 0);
        $c->write(join '', map { ($c->get_frame($feed, cookie => $cookie))[1] } 1 .. 100);
        push @conns, $c;
    }
    return @conns;
}

subtest 'a client that never reads holds at most limits.conn-pending of answers (defaults)' => sub {
    # under AddressSanitizer freed memory waits in a quarantine that RSS would count: none here
    local $ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'quarantine_size_mb=0';
    my $server = spawn_forumd(db => $db, extra => "access-log: false\n");
    my ($status, $bytes) = normal_get($server);
    is $status, 200, 'the feed page is served';
    cmp_ok $bytes, '>', 900_000, "and is about 1 MB ($bytes bytes)";
    my $before = rss_kib($server->pid);

    my @conns = stalled_clients($server, 4);
    # the normal client's page comes after the attackers' requests on the same loop: they are all taken
    ($status, $bytes) = normal_get($server);
    is $status, 200, 'a normal client is served while 4 connections hold their answers';
    cmp_ok $bytes, '>', 900_000, 'with the whole page';
    my $peak = 0;
    for (1 .. 20) {
        my $r = rss_kib($server->pid);
        $peak = $r if $r > $peak;
        select undef, undef, undef, 0.1;
    }
    my $grown_mib = ($peak - $before) / 1024;
    note sprintf('RSS %.1f MiB before, %.1f MiB at the peak', $before / 1024, $peak / 1024);
    # 4 connections x 4 MiB (the default limits.conn-pending) plus what is generated for the 32
    # concurrent requests; without a bound it is 4 x 100 pages, about 400 MB
    cmp_ok $grown_mib, '<', 48, sprintf('the server grew by %.1f MiB for 4 x 100 pages of 1 MB not read', $grown_mib);
    $_->close for @conns;
    $server->stop;
};

subtest 'a connection with answers that make no progress is closed after limits.send-timeout' => sub {
    my $server = spawn_forumd(db => $db, limits => { 'send-timeout' => 1, 'conn-pending' => '1MiB' });
    my ($stalled) = stalled_clients($server, 1);
    # the client reads only now, to see how its connection ended: h2o alone keeps it past its own idle timeout (10 s)
    sleep 2;
    my ($end) = $stalled->wait_closed(15, until_eof => 1);
    is $end, 'eof', 'the connection was closed by the server';
    like $server->log, qr/answers unsent \(\d+ bytes reserved, \d+ streams\) for 1000 ms: closed/, 'and the log says why';
    ok kill(0, $server->pid), 'the server is alive' or diag $server->log;

    # files (h2o's own handler) held behind a closed window count too
    my $files = t::H2->connect(port => $server->tls_port, window => 0);
    $files->write(join '', map { ($files->get_frame('/'))[1] } 1 .. 20);
    sleep 2;
    ($end) = $files->wait_closed(15, until_eof => 1);
    is $end, 'eof', 'a connection whose file answers make no progress is closed too';
    my ($status, $bytes) = normal_get($server);
    is $status, 200, 'a normal client is served';
    cmp_ok $bytes, '>', 900_000, 'with the whole page';
    $server->stop;
};

subtest 'streams opened and reset past limits.h2-stream-rate get a GOAWAY (ENHANCE_YOUR_CALM)' => sub {
    my $server = spawn_forumd(db => $db, limits => { 'h2-stream-rate' => 10, 'h2-stream-burst' => 50 },
                              extra => "access-log: false\n");
    my $flood = eval { t::H2->connect(port => $server->tls_port) } or BAIL_OUT("connect: $@ " . $server->log);
    my ($end, $sent) = $flood->rapid_reset('/api/posts?limit=1', 1000, cookie => $cookie);
    is $end, 'goaway:11', "the flooding connection gets GOAWAY with ENHANCE_YOUR_CALM (after $sent streams)";
    cmp_ok $sent, '<', 1000, 'before the end of its flood';
    like $server->log, qr/HTTP\/2 streams opened faster than 10\/s \(burst 50\): GOAWAY/, 'and the log says why';
    my ($status, $bytes) = normal_get($server);
    is $status, 200, 'a normal client is served';
    $flood->close;

    # a busy client whose streams all complete is not a flood: each answered stream gives its token back
    my $ok = t::H2->connect(port => $server->tls_port);
    my @codes = map { ($ok->get('/api/posts?limit=1', cookie => $cookie))[0] } 1 .. 300;
    is scalar(grep { defined $_ && $_ eq '200' } @codes), 300, '300 requests on one connection (6 times the burst) are all answered';
    $ok->close;
    $server->stop;
};

subtest 'an answer refused before admission keeps its connection\'s record while it waits' => sub {
    # Stream A (admitted) and stream B (an empty :path, refused before admission, its 400 reserved against
    # the connection) wait behind a window of 0; A is let through and ends, the connection goes idle long
    # enough for its record to be swept, then B is reset. B's answer must not release a record that is
    # gone (under ASan that was a write into freed memory).
    my $server = spawn_forumd(db => $db, extra => "access-log: false\n");
    my $c = t::H2->connect(port => $server->tls_port, window => 0);
    my ($a, $fa) = $c->get_frame($feed, cookie => $cookie);
    my ($b, $fb) = $c->get_frame('', cookie => $cookie);
    $c->write($fa . $fb);
    select undef, undef, undef, 0.5;
    $c->write(t::H2::frame(t::H2::WINDOW_UPDATE, 0, $a, pack('N', 0x7fff0000)) . t::H2::frame(t::H2::WINDOW_UPDATE, 0, 0, pack('N', 0x7fff0000)));
    my $a_done;
    while (my $f = $c->read_frame(20)) {
        if ($f->{type} == t::H2::SETTINGS && !($f->{flags} & 1)) {
            $c->write(t::H2::frame(t::H2::SETTINGS, 1, 0, ''));
        }
        if ($f->{id} == $a && ($f->{type} == t::H2::DATA || $f->{type} == t::H2::HEADERS) && ($f->{flags} & 1)) {
            $a_done = 1;
            last;
        }
    }
    ok $a_done, 'stream A is answered once its window opens';
    select undef, undef, undef, 2.5;    # the sweep (every second) drops the record of an idle connection
    $c->write($c->rst_frame($b));
    select undef, undef, undef, 0.5;
    $c->close;
    my ($status) = eval { normal_get($server) };
    is $status // 'none', '200', 'forumd still serves';
    ok kill(0, $server->pid), 'and runs';
};

subtest 'streams that never reach a handler are charged too' => sub {
    # POSTs whose body never comes wait in h2o for it, so no handler sees them: the sweep charges them
    my $server = spawn_forumd(db => $db, limits => { 'h2-stream-rate' => 10, 'h2-stream-burst' => 50, 'send-timeout' => 1 },
                              extra => "access-log: false\n");
    my $flood = t::H2->connect(port => $server->tls_port);
    my ($end, $sent) = $flood->rapid_reset('/api/posts', 200000, cookie => $cookie, post => 1, batch => 50);
    is $end, 'goaway:11', "the flooding connection gets GOAWAY with ENHANCE_YOUR_CALM (after $sent streams)";
    cmp_ok $sent, '<', 200000, 'before the end of its flood';
    $flood->close;
    my ($status) = normal_get($server);
    is $status, 200, 'a normal client is served';
    $server->stop;
};

subtest 'the limits are checked when the configuration is read' => sub {
    for my $case (['h2-concurrent-streams', 0, qr/limits\.h2-concurrent-streams: must be between 1 and 100/],
                  ['conn-pending', '1KiB', qr/limits\.conn-pending: must be between 4096 and/],
                  ['send-timeout', 'soon', qr/limits\.send-timeout: expected a number of seconds/],
                  ['h2-stream-rate', 0, qr/limits\.h2-stream-rate: must be between 1 and/],
                  ['h2-stream-burst', -1, qr/limits\.h2-stream-burst: expected a whole number/]) {
        my ($key, $value, $message) = @$case;
        my $server = spawn_forumd(expect_fail => 1, limits => { $key => $value });
        isnt $server->{exit}, 0, "$key: $value is refused";
        like $server->log, $message, '  with a message that names the key';
    }
};

done_testing;
