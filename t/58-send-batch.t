# The batch of sends (chat's message.send and rooms' room.send share it) while the database is locked: a
# send that waits past the give-back is answered "unavailable", the sends queued after it stay queued and,
# once the lock is gone, are delivered with the very created_at they were stored with, though the queue
# moved them and took new sends behind them.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

plan skip_all => 'SQLite only: the stall is SQLite\'s database-wide write lock held by another process\'s sqlite3, and '
               . 'the give-back follows SQLite\'s busy wait' unless backend() eq 'sqlite';

my $dir = tempdir(CLEANUP => 1);
my $db = "$dir/forum.db";
my $server = spawn_forumd(db => $db, settings => "auth:\n  scrypt-n: 1024\nrooms:\n  rate-limit: off");

my (%jar, %id);
sub register {
    my ($name) = @_;
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    die $res->{body} unless $res->{status} == 201;
    $id{$name} = $res->{json}{user}{id};
}
register($_) for qw(alice bob);

sub ws {
    my ($name) = @_;
    my $ws = ws_connect('ws://127.0.0.1:' . $server->port . '/ws', cookie => cookie_of($jar{$name}));
    die "ws for $name: $ws->{error}" if $ws->{error};
    $ws->{hello} = $ws->wait_for('hello');
    return $ws;
}

sub api {
    my ($name, $method, $path) = @_;
    return curl_json('curl -s', $method, $server->url . $path, cookie_jar => $jar{$name});
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

# True while another connection holds the write lock: a writer with no busy timeout is refused at once.
sub locked {
    my $out = `sqlite3 '$db' 'BEGIN IMMEDIATE; ROLLBACK;' 2>&1`;
    return $out =~ /locked|busy/i;
}

# Another process's sqlite3 shell holding the write lock until release().
sub hold_lock {
    open my $fh, '|-', "sqlite3 '$db' >/dev/null 2>&1" or die "sqlite3: $!";
    $fh->autoflush(1);
    print $fh ".timeout 10000\nBEGIN IMMEDIATE;\n";
    die 'the lock was not taken' unless wait_until(\&locked, 10);
    return $fh;
}

sub release {
    my ($fh) = @_;
    print $fh "ROLLBACK;\n";
    close $fh;
}

# Frames of `type` until `n` have come or `timeout` passed.
sub gather {
    my ($ws, $type, $n, $timeout) = @_;
    my @got;
    my $deadline = time + $timeout;
    while (@got < $n && time < $deadline) {
        my $f = $ws->wait_for($type, 0.5);
        push @got, $f if $f;
    }
    return @got;
}

# Sends `first` under a lock, then `second` a while later, waits for `first` to be given back, sends
# `third` (into the place `second` held before the queue moved), releases the lock: what the recipient got.
sub through_a_lock {
    my ($sender, $send, $frame_type, $first) = @_;
    my $lock = hold_lock();
    $send->('first', 'c1');
    # well before the first is given back, but late enough for the second to outlast the rest (the client's
    # loop runs meanwhile: it writes the frame)
    $sender->collect('none', 4);
    $send->('second', 'c2');
    my $err = $sender->wait_for('error', 20);
    is $err && $err->{code}, 'unavailable', 'the first send waited too long: unavailable';
    is $err && $err->{ref}, $first, 'naming its client_id';
    $send->('third', 'c3');
    $sender->collect('none', 0.5); # written before the lock goes
    release($lock);
    return map { $_->{message} } gather($sender, $frame_type, 2, 15);
}

my @cases = (
    ['chat', 'message', "/api/messages/$id{bob}", 'c', sub { { type => 'message.send', to => $id{bob}, body => $_[0], client_id => $_[1] } }],
    ['rooms (the lobby)', 'room.message', '/api/rooms/1/messages', 'r', sub { { type => 'room.send', room => 1, body => $_[0], client_id => $_[1] } }],
);
for my $case (@cases) {
    my ($what, $frame_type, $history, $prefix, $frame) = @$case;
    subtest "$what: sends that waited out a lock are delivered with the created_at they were stored with" => sub {
        my $a = ws('alice');
        my @got = through_a_lock($a, sub { $a->send($frame->($_[0], "$prefix$_[1]")) }, $frame_type, "${prefix}c1");
        is_deeply [map { $_->{body} } @got], ['second', 'third'], 'the second and third arrive, in order';
        my %stored = map { $_->{body} => $_->{created_at} } @{ api('alice', 'GET', $history)->{json}{messages} };
        ok !exists $stored{first}, 'the one given back was not stored';
        is $_->{created_at}, $stored{ $_->{body} }, "\"$_->{body}\" is delivered with its stored created_at" for @got;
        isnt $stored{second}, $stored{third}, 'which differ between the two';
        $a->close;
    };
}

done_testing;
