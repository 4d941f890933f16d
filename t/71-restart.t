# A graceful restart of the whole binary under start_server(1): the listening sockets are inherited,
# so no connection is refused; the old process drains and closes WebSockets with 1001; clients resume
# with ?after= and lose nothing.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

plan skip_all => 'start_server (libserver-starter-perl) is not installed' unless `which start_server` =~ /\S/;

my $server = spawn_forumd(starter => 1, settings => "auth:\n  scrypt-n: 1024");
for (1 .. 600) { last if $server->log =~ /ready/; sleep 0.05 }    # up to 30 s: a loaded machine (the migrations of a new database) may be slow
like $server->log, qr/listening on http:.* \(inherited socket\)/, 'forumd listens on the socket start_server passed';

my (%jar, %id);
for my $name (qw(ann ben)) {
    $jar{$name} = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar{$name},
                        json => { nickname => $name, email => "$name\@example.org", password => 'password1', first_name => 'F',
                                  last_name => 'L', age => 33, gender => 'other' });
    $id{$name} = $res->{json}{user}{id};
}
my $ws_url = 'ws://127.0.0.1:' . $server->port . '/ws';
my @clients = map { ws_connect($ws_url, cookie => cookie_of($jar{ben})) } 1 .. 5;
$_->wait_for('hello') for @clients;
my $sender = ws_connect($ws_url, cookie => cookie_of($jar{ann}));
$sender->wait_for('hello');

# HTTP load through the restart, in a child: every request must be answered
my $load_log = File::Temp->new;
my $load = fork // die;
if ($load == 0) {
    my ($ok, $bad) = (0, 0);
    my $end = time + 5;
    while (time < $end) {
        my $code = `curl -s -o /dev/null -w '%{http_code}' --max-time 5 @{[ $server->url ]}/`;
        $code eq '200' ? $ok++ : $bad++;
    }
    open my $fh, '>', $load_log->filename;
    print $fh "$ok $bad\n";
    exit 0;
}

my @sent;
my $send = sub {
    my $n = scalar @sent + 1;
    $sender->send({ type => 'message.send', to => $id{ben}, body => "m$n", client_id => "r$n" });
    my $m = $sender->wait_for('message', 5);
    push @sent, $m->{message}{id} if $m;
};
$send->() for 1 .. 5;
my $old_pid = (`pgrep -P @{[ $server->pid ]}` =~ /(\d+)/)[0];
ok $old_pid, "forumd runs as start_server's child ($old_pid)";
kill 'HUP', $server->pid;

# the old process closes its WebSockets with 1001 once start_server tells it to stop
my %last;
for my $i (0 .. $#clients) {
    my $c = $clients[$i];
    my @got;
    while (my $m = $c->wait_for('message', 1)) { push @got, $m->{message}{id} }
    $last{$i} = $got[-1] // 0;
    my $closed = $c->wait_closed(15);
    is $closed && $closed->[0], 1001, "client $i was closed with 1001";
}
ok !kill(0, $old_pid) || waitpid($old_pid, WNOHANG) != 0 || do { sleep 2; !kill 0, $old_pid }, 'the old forumd exited';

# messages sent while the clients are away
$sender = ws_connect($ws_url, cookie => cookie_of($jar{ann}));
ok !$sender->{error}, 'a new connection is accepted by the new forumd';
$sender->wait_for('hello');
$send->() for 1 .. 5;

for my $i (0 .. $#clients) {
    my $c = ws_connect("$ws_url?after=$last{$i}", cookie => cookie_of($jar{ben}));
    $c->wait_for('hello');
    my @got;
    while (my $m = $c->wait_for('message', 1)) { push @got, $m->{message}{id} }
    my @want = grep { $_ > $last{$i} } @sent;
    is_deeply \@got, \@want, "client $i resumed: every message after $last{$i}, once, in order";
    $c->close;
}

waitpid $load, 0;
my ($ok, $bad) = split ' ', slurp($load_log->filename);
ok $ok > 0, "HTTP requests were answered during the restart ($ok)";
is $bad, 0, 'none was refused or failed';
$sender->close;
is $server->stop, 0, 'start_server stops with its forumd';
diag $server->log if $ENV{DEBUG};
done_testing;
