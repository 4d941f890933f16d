# The database in trouble: a lock held by another process freezes nothing (reads, pings and every
# other request are answered; writes answer 503 "unavailable"; chat sends wait queued and arrive once),
# a write never fails because another connection committed under an open read, a failed logout is
# not a logout, a full disk is 503, an operator's long read transaction is reported once and the WAL is
# truncated after it, and client_id makes a retried post or comment safe.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $dir = tempdir(CLEANUP => 1);
my $db = "$dir/forum.db";
# what SQLite's locks, its busy wait, its page limit and its WAL do is SQLite's own behaviour: on PostgreSQL
# (make test-pg) those parts are skipped; the PostgreSQL tests make PostgreSQL's own faults
my $SQLITE_LOCK = 'SQLite only: another process\'s sqlite3 holds SQLite\'s database-wide write lock';
my $server = spawn_forumd(db => $db, settings => "auth:\n  scrypt-n: 1024", plugins => [qw(auth posts comments chat probe)]);

my (%jar, %id);
sub register {
    my ($name, %opts) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', ($opts{server} // $server)->url . '/api/auth/register', cookie_jar => $jar,
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    return $res if $opts{raw};
    die "register $name: $res->{body}" unless $res->{status} == 201;
    ($jar{$name}, $id{$name}) = ($jar, $res->{json}{user}{id});
    return $res;
}
register($_) for qw(alice bob carol);

sub api {
    my ($name, $method, $path, $json, %opts) = @_;
    return curl_json($opts{curl} // 'curl -s', $method, ($opts{server} // $server)->url . $path, cookie_jar => $jar{$name},
                     (defined $json ? (json => $json) : ()));
}

sub ws {
    my ($name, %opts) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . ($opts{server} // $server)->port . '/ws', cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello');
    return $ws;
}

my $cid = 0;
sub send_msg {
    my ($ws, $to, $body, %extra) = @_;
    my $client_id = $extra{client_id} // 'm' . ++$cid;
    $ws->send({ type => 'message.send', to => $id{$to}, body => $body, client_id => $client_id });
    return $client_id;
}

sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

# Another process's sqlite3 shell, fed through a pipe that stays open until release().
sub sqlite_shell {
    my ($path, @sql) = @_;
    open my $fh, '|-', "sqlite3 '$path' >/dev/null 2>&1" or die "sqlite3: $!";
    $fh->autoflush(1);
    print $fh map { "$_\n" } @sql;
    return $fh;
}

sub release {
    my ($fh, $sql) = @_;
    print $fh "$sql\n";
    close $fh;
}

# True while another connection holds the write lock: a writer with no busy timeout is refused at once.
sub locked {
    my $out = `sqlite3 '$db' 'BEGIN IMMEDIATE; ROLLBACK;' 2>&1`;
    return $out =~ /locked|busy/i;
}

sub hold_lock {
    # the shell waits for the lock (a write of the server's, or locked()'s own probe, may hold it a moment)
    my $fh = sqlite_shell($db, '.timeout 10000', 'BEGIN IMMEDIATE;');
    die 'the lock was not taken' unless wait_until(\&locked, 10);
    return $fh;
}

# Frames of `type` until `n` have come or `timeout` passed, then whatever else comes within `extra` seconds.
sub gather {
    my ($ws, $type, $n, $timeout, $extra) = @_;
    my @got;
    my $deadline = time + $timeout;
    while (@got < $n && time < $deadline) {
        my $f = $ws->wait_for($type, 0.5);
        push @got, $f if $f;
    }
    push @got, $ws->collect($type, $extra // 1);
    return @got;
}

my $post = api('alice', 'POST', '/api/posts', { title => 'a post', body => 'to comment on', categories => ['general'] })->{json}{post};

subtest 'a lock held by another process: pings and reads are answered, chat sends wait and arrive once' => sub {
    plan skip_all => $SQLITE_LOCK unless backend() eq 'sqlite';
    my ($a, $b) = (ws('alice'), ws('bob'));
    my $lock = hold_lock();
    my @sent = map { send_msg($a, 'bob', "under the lock $_") } 1 .. 40;
    $a->send({ type => 'ping' });
    # before: the batch and then each of its messages waited for the lock on the loop (2 s each)
    ok $a->wait_for('pong', 20), 'a ping sent after 40 messages is answered while the lock is held';
    my $res = api('carol', 'GET', '/api/posts', undef, curl => 'curl -s --max-time 20');
    is $res->{status}, 200, 'a GET is answered while the lock is held';
    is scalar($b->collect('message', 0.5)), 0, 'no message is delivered while it cannot be stored';
    is scalar($a->collect('message', 0)), 0, 'and the sender has no acknowledgement';
    is scalar($a->collect('error', 0)), 0, 'nor an error';
    release($lock, 'ROLLBACK;');

    my @got = gather($b, 'message', 40, 20);
    is_deeply [map { $_->{message}{body} } @got], [map { "under the lock $_" } 1 .. 40],
        'once the lock is gone every message arrives, once and in order';
    my @echo = gather($a, 'message', 40, 10, 0.2);
    is_deeply [map { $_->{message}{client_id} } @echo], \@sent, 'and each sender copy once';
    $a->close;
    $b->close;
};

subtest 'writes under a lock answer 503 "unavailable" with Retry-After; nothing is stored, the session stays' => sub {
    plan skip_all => $SQLITE_LOCK unless backend() eq 'sqlite';
    my $posts_before = scalar @{ api('alice', 'GET', '/api/posts')->{json}{posts} };
    my $lock = hold_lock();
    my @writes = (
        ['a post', api('alice', 'POST', '/api/posts', { title => 't', body => 'b', categories => ['general'] })],
        ['a comment', api('alice', 'POST', "/api/posts/$post->{id}/comments", { body => 'c' })],
        ['a read mark', api('alice', 'POST', "/api/messages/$id{bob}/read", { up_to => 1 })],
        ['a registration', register('dave', raw => 1)],
        ['a logout', api('carol', 'POST', '/api/auth/logout')],
    );
    for my $w (@writes) {
        my ($what, $res) = @$w;
        is $res->{status}, 503, "$what: 503";
        is $res->{json}{error}{code}, 'unavailable', "$what: code unavailable";
        like $res->{headers}{'retry-after'} // '', qr/^\d+$/, "$what: Retry-After";
    }
    release($lock, 'ROLLBACK;');
    is api('carol', 'GET', '/api/auth/me')->{status}, 200, 'the session whose logout failed still works';
    is scalar @{ api('alice', 'GET', '/api/posts')->{json}{posts} }, $posts_before, 'no post was stored';
    is api('carol', 'POST', '/api/auth/logout')->{status}, 204, 'logout works once the lock is gone';
    is api('carol', 'GET', '/api/auth/me')->{status}, 401, 'and then the session is gone';
    register('carol2');
    is register('dave', raw => 1)->{status}, 201, 'the registration refused under the lock can be sent again';
};

subtest 'a lock shorter than a second: the write waits it out off the loop and is stored' => sub {
    plan skip_all => $SQLITE_LOCK unless backend() eq 'sqlite';
    my $a = ws('alice');
    my $lock = hold_lock();
    my $ua = mojo_ua();
    my $res;
    $ua->post($server->url . "/api/posts/$post->{id}/comments" => { Cookie => cookie_of($jar{alice}) } => json => { body => 'brief' }
              => sub { $res = $_[1]->res });
    my $tick = Mojo::IOLoop->recurring(0.05 => sub { }); # one_tick returns at least this often
    # the server waits out a lock for a second: release it well within that, even on a loaded machine
    my $until = time + 0.15;
    Mojo::IOLoop->one_tick while time < $until && !$res;
    ok !$res, 'no answer while the lock is held';
    $a->send({ type => 'ping' });
    ok $a->wait_for('pong', 5), 'a ping is answered meanwhile';
    release($lock, 'ROLLBACK;');
    $until = time + 10;
    Mojo::IOLoop->one_tick while time < $until && !$res;
    Mojo::IOLoop->remove($tick);
    is $res && $res->code, 201, 'the comment is stored once the lock is gone' or diag $res ? $res->code . ' ' . $res->body : 'no answer';
    $a->close;
};

subtest 'chat: a lock that lasts gives the sender "unavailable" for its client_id; the retry is stored once' => sub {
    plan skip_all => $SQLITE_LOCK unless backend() eq 'sqlite';
    my ($a, $b) = (ws('alice'), ws('bob'));
    my $lock = hold_lock();
    my $client_id = send_msg($a, 'bob', 'waits too long');
    my $err = $a->wait_for('error', 20);
    ok $err, 'the sender gets an error while the lock lasts';
    is $err->{code}, 'unavailable', 'code unavailable';
    is $err->{ref}, $client_id, 'naming its client_id';
    release($lock, 'ROLLBACK;');
    is scalar($b->collect('message', 0.5)), 0, 'the message was not delivered';
    send_msg($a, 'bob', 'waits too long', client_id => $client_id);
    my @got = gather($b, 'message', 1, 10);
    is scalar(@got), 1, 'the retry with the same client_id is delivered once';
    send_msg($a, 'bob', 'waits too long', client_id => $client_id);
    is scalar(gather($b, 'message', 1, 1)), 0, 'and a second retry stores nothing new';
    $a->close;
    $b->close;
};

subtest 'a full disk answers 503 "unavailable"' => sub {
    plan skip_all => 'SQLite only: the probe fills the disk with SQLite\'s PRAGMA max_page_count' unless backend() eq 'sqlite';
    my $res = api('alice', 'POST', '/api/probe/storage-full', { full => \1 });
    is $res->{status}, 200, 'the database may not grow (PRAGMA max_page_count on the server\'s connection)';
    $res = api('alice', 'POST', '/api/posts', { title => 'big', body => 'x' x 19000, categories => ['general'] });
    is $res->{status}, 503, 'a post that needs a new page: 503';
    is $res->{json}{error}{code}, 'unavailable', 'code unavailable';
    $res = api('alice', 'POST', "/api/posts/$post->{id}/comments", { body => 'y' x 4900 });
    is $res->{status}, 503, 'a comment too';
    api('alice', 'POST', '/api/probe/storage-full', { full => \0 });
    is api('alice', 'POST', '/api/posts', { title => 'big', body => 'x' x 19000, categories => ['general'] })->{status}, 201,
        'with room again the same post is stored';
};

subtest 'a paced operator write loop from another process: no comment or read mark fails with 500' => sub {
    # sqlite3 (waiting up to 5 s for the lock) or psql, as db_query runs them
    db_query($db, 'CREATE TABLE IF NOT EXISTS operator_log (at TEXT)');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $end = time + 6;
        while (time < $end) {
            eval { db_query($db, 'INSERT INTO operator_log VALUES (CAST(CURRENT_TIMESTAMP AS TEXT))') };
            sleep 0.005;
        }
        POSIX::_exit(0);
    }
    my $ua = mojo_ua();
    my %status;
    my $cookie = cookie_of($jar{alice});
    my $deadline = time + 5;
    while (time < $deadline) {
        my $pending = 0;
        for my $i (1 .. 16) {
            my ($path, $body) = $i % 2 ? ("/api/posts/$post->{id}/comments", { body => "under load $i" })
                                       : ("/api/messages/$id{bob}/read", { up_to => 1 });
            ++$pending;
            $ua->post($server->url . $path => { Cookie => $cookie } => json => $body => sub {
                my (undef, $tx) = @_;
                ++$status{ $tx->res->code // 'none' };
                --$pending;
            });
        }
        Mojo::IOLoop->one_tick while $pending;
    }
    waitpid $pid, 0;
    my $operator = db_value($db, 'SELECT count(*) FROM operator_log');
    cmp_ok $operator, '>', 10, "the operator wrote meanwhile ($operator rows)";
    is $status{500} // 0, 0, 'no 500 among ' . join(', ', map { "$status{$_} x $_" } sort keys %status);
    ok(($status{201} // 0) > 0 && ($status{204} // 0) > 0, 'comments and read marks were stored');
};

subtest 'client_id makes a retried post or comment safe' => sub {
    my $b = ws('bob');
    my $first = api('alice', 'POST', '/api/posts', { title => 'once', body => 'only once', categories => ['news'], client_id => 'p-1' });
    is $first->{status}, 201, 'a post with a client_id';
    my $again = api('alice', 'POST', '/api/posts', { title => 'once', body => 'only once', categories => ['news'], client_id => 'p-1' });
    is $again->{status}, 201, 'its retry: the same status';
    is $again->{json}{post}{id}, $first->{json}{post}{id}, 'and the same post';
    my $other = api('alice', 'POST', '/api/posts', { title => 'changed', body => 'changed', categories => ['news'], client_id => 'p-1' });
    is $other->{json}{post}{id}, $first->{json}{post}{id}, 'a reused client_id with another body is still the first post';
    is $other->{json}{post}{title}, 'once', 'unchanged';
    my @created = grep { $_->{post}{id} == $first->{json}{post}{id} } $b->collect('post.created', 1);
    is scalar(@created), 1, 'post.created went out once';
    my $bobs = api('bob', 'POST', '/api/posts', { title => 'bob', body => 'bob', categories => ['news'], client_id => 'p-1' });
    isnt $bobs->{json}{post}{id}, $first->{json}{post}{id}, 'the same client_id from another author is another post';
    is api('alice', 'POST', '/api/posts', { title => 't', body => 'b', categories => ['news'], client_id => 'x' x 65 })->{status}, 422,
        'a client_id over 64 characters: 422';
    is api('alice', 'POST', '/api/posts', { title => 't', body => 'b', categories => ['news'], client_id => 5 })->{status}, 400,
        'a client_id that is not a string: 400';

    my $path = "/api/posts/$post->{id}/comments";
    my $count = api('alice', 'GET', "/api/posts/$post->{id}")->{json}{post}{comment_count};
    my $c1 = api('alice', 'POST', $path, { body => 'a comment', client_id => 'c-1' });
    is $c1->{status}, 201, 'a comment with a client_id';
    my $c2 = api('alice', 'POST', $path, { body => 'a comment', client_id => 'c-1' });
    is $c2->{status}, 201, 'its retry: the same status';
    is $c2->{json}{comment}{id}, $c1->{json}{comment}{id}, 'and the same comment';
    is api('alice', 'POST', $path, { body => 'other words', client_id => 'c-1' })->{json}{comment}{body}, 'a comment',
        'a reused client_id with another body is still the first comment';
    is api('alice', 'GET', "/api/posts/$post->{id}")->{json}{post}{comment_count}, $count + 1, 'counted once';
    my @events = grep { $_->{comment}{id} == $c1->{json}{comment}{id} } $b->collect('comment.created', 1);
    is scalar(@events), 1, 'comment.created went out once';
    is api('bob', 'POST', $path, { body => 'a comment', client_id => 'c-1' })->{json}{comment}{author}{id}, $id{bob},
        'another author\'s client_id c-1 is their own comment';
    $b->close;
};

subtest 'an operator\'s open read transaction: reported once, no checkpoint storm on the loop, the WAL truncated after it' => sub {
    plan skip_all => 'SQLite only: an open read transaction holds back SQLite\'s WAL checkpoints' unless backend() eq 'sqlite';
    my $sdir = tempdir(CLEANUP => 1);
    my $sdb = "$sdir/forum.db";
    my $s = spawn_forumd(db => $sdb, settings => "auth:\n  scrypt-n: 1024");
    register($_, server => $s) for qw(erin frank);
    my $reader = sqlite_shell($sdb, 'BEGIN;', 'SELECT count(*) FROM users;');
    sleep 1; # the shell has read its lines and holds its snapshot
    my $a = ws('erin', server => $s);
    my $f = ws('frank', server => $s);
    my $body = 'w' x 3900;
    my $n = 0;
    for my $round (1 .. 12) {
        send_msg($a, 'frank', "$body $round.$_") for 1 .. 100;
        $n += 100;
        gather($f, 'message', 100, 20, 0);
        last if $round >= 3 && $s->log =~ /checkpoint cannot progress/;
    }
    my $wal = -s "$sdb-wal";
    # "cannot progress" is decided past 1,000 WAL pages: at least that many 4 KiB pages are there
    cmp_ok $wal, '>', 1000 * 4096, "the WAL grew past the reader ($wal bytes after $n messages)";
    ok wait_until(sub { $s->log =~ /checkpoint cannot progress/ }, 15), 'the stuck checkpoint is reported';
    my @stuck = $s->log =~ /(checkpoint cannot progress[^\n]*)/g;
    is scalar(@stuck), 1, 'once';
    like $stuck[0] // '', qr/read transaction/, 'with the reason';
    unlike $s->log, qr/checkpointed on the loop/, 'no checkpoint on the loop meanwhile';
    release($reader, 'COMMIT;');
    ok wait_until(sub { (-s "$sdb-wal" // 0) < 1024 * 1024 }, 40), 'the WAL is truncated once the reader is gone ('
        . (-s "$sdb-wal" // 0) . ' bytes)';
    # the file shrinks inside the checkpoint call, a moment before the line is written
    ok wait_until(sub { $s->log =~ /WAL truncated/ }, 10), 'and that is logged';
    send_msg($a, 'frank', 'after');
    ok scalar(gather($f, 'message', 1, 10, 0)), 'messages go on';
    $a->close;
    $f->close;
    $s->stop;
};

done_testing;
