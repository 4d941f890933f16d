# Every feature plugin swapped ten times under load: HTTP requests on every plugin's routes and 200
# WebSocket clients exchanging messages. Zero failed requests, zero disconnects, zero lost or doubled
# messages, and the new versions visible in /_status.
use strict;
use warnings;
use lib '.';
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use Mojo::IOLoop;
use Mojo::UserAgent;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my @plugins = qw(auth posts comments chat rooms);
my $build = build_dir();
my %v1 = map { $_ => "$build/plugins/$_.so" } @plugins;
my %v2 = map { $_ => "$build/t-plugins/${_}_v2.so" } @plugins;
my $server = spawn_forumd(settings => "auth:\n  scrypt-n: 1024", watch => 1, plugin_files => {%v1});

my $USERS = 100;    # two tabs each: 200 WebSocket clients
my $MESSAGES = 15;  # per user, to their partner
my (@cookie, @id);
for my $i (0 .. $USERS - 1) {
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar,
                        json => { nickname => "load$i", email => "load$i\@example.org", password => 'password1', first_name => 'L',
                                  last_name => 'T', age => 30, gender => 'other' });
    die "register: $res->{body}" unless $res->{status} == 201;
    $id[$i] = $res->{json}{user}{id};
    $cookie[$i] = cookie_of($jar);
}
my $first_post = curl_json('curl -s', 'POST', $server->url . '/api/posts', headers => ["Cookie: $cookie[0]"],
                           json => { title => 'swap', body => 'b', categories => ['general'] })->{json}{post}{id};

# --- HTTP load on every plugin's routes, in a child, until told to stop ---
my $stop_flag = tempdir(CLEANUP => 1) . '/stop';
my $http_log = File::Temp->new;
my $http = fork // die;
if ($http == 0) {
    my $ua = HTTP::Tiny->new(timeout => 10, default_headers => { Cookie => $cookie[1], 'Content-Type' => 'application/json' });
    my $base = $server->url;
    my @reqs = (
        ['GET', '/api/auth/me'], ['GET', '/api/categories'], ['GET', '/api/posts?limit=5'], ['GET', "/api/posts/$first_post"],
        ['GET', "/api/posts/$first_post/comments"], ['POST', "/api/posts/$first_post/comments", '{"body":"under load"}'],
        ['POST', '/api/posts', '{"title":"t","body":"b","categories":["news"]}'], ['GET', '/api/users'],
        ['GET', "/api/messages/$id[0]"], ['POST', '/api/auth/login', '{"login":"load2","password":"password1"}'],
        ['GET', '/api/rooms'], ['GET', '/api/rooms/1/messages'],
    );
    my ($ok, @bad) = (0);
    while (!-e $stop_flag) {
        for my $r (@reqs) {
            my $res = $ua->request($r->[0], $base . $r->[1], defined $r->[2] ? { content => $r->[2] } : {});
            $res->{status} =~ /^2/ ? $ok++ : push @bad, "$r->[0] $r->[1]: $res->{status} $res->{content}";
        }
    }
    open my $fh, '>', $http_log->filename;
    print $fh join("\n", $ok, @bad), "\n";
    close $fh; # _exit does not flush
    POSIX::_exit(0);
}

# --- the swaps, in a child: each plugin ten times, alternating 2.0.0 and 1.0.0 ---
my $swapper = fork // die;
if ($swapper == 0) {
    for my $round (1 .. 10) {
        for my $name (@plugins) {
            my $src = $round % 2 ? $v2{$name} : $v1{$name};
            copy($src, "$server->{plugin_dir}/.$name.new") or die $!;
            rename "$server->{plugin_dir}/.$name.new", "$server->{plugin_dir}/$name.so" or die $!;
            sleep 0.3;
        }
    }
    POSIX::_exit(0);
}

# --- 200 WebSocket clients: user i writes to user i^1; every tab of both must see each message once ---
my $ua = Mojo::UserAgent->new(insecure => 1, inactivity_timeout => 0, connect_timeout => 10);
my (@tx, @seen, $disconnects, $opened, $errors);
$disconnects = $opened = $errors = 0;
for my $c (0 .. 2 * $USERS - 1) {
    my $u = int($c / 2);
    $ua->websocket('ws://127.0.0.1:' . $server->port . '/ws' => { Cookie => $cookie[$u] } => sub {
        my (undef, $tx) = @_;
        return $errors++ unless $tx->is_websocket;
        $opened++;
        $tx[$c] = $tx;
        $tx->on(message => sub {
            my $f = json_decode($_[1]);
            if ($f->{type} eq 'message') {
                push @{ $seen[$c] }, $f->{message};
            } elsif ($f->{type} eq 'error') {
                $errors++;
            }
        });
        $tx->on(finish => sub { $disconnects++ });
    });
}
my $deadline = time + 30;
Mojo::IOLoop->one_tick while $opened + $errors < 2 * $USERS && time < $deadline;
is $opened, 2 * $USERS, '200 WebSocket clients connected';

my $sent = 0;
my $tick = Mojo::IOLoop->recurring(0.25 => sub {
    return if $sent >= $MESSAGES;
    $sent++;
    for my $u (0 .. $USERS - 1) {
        $tx[2 * $u]->send(json_encode({ type => 'message.send', to => $id[$u ^ 1], body => "m$sent from $u",
                                        client_id => "u$u-$sent" }));
    }
});
my $expected = 2 * $MESSAGES;  # per connection: what its user sent and received, each once
$deadline = time + 120;
my $swapping = 1;
Mojo::IOLoop->one_tick while time < $deadline
    && ($swapping = waitpid($swapper, WNOHANG) == 0 ? 1 : 0, $swapping || grep({ scalar(@{ $seen[$_] // [] }) < $expected } 0 .. $#tx));
Mojo::IOLoop->remove($tick);
ok !$swapping, 'the swapper finished';
open my $fh, '>', $stop_flag;
close $fh;
waitpid $http, 0;

is $disconnects, 0, 'no WebSocket was disconnected';
is $errors, 0, 'no frame was refused';
my ($lost, $doubled, $disorder) = (0, 0, 0);
for my $c (0 .. $#tx) {
    my %count;
    $count{ $_->{id} }++ for @{ $seen[$c] };
    $doubled += grep { $_ > 1 } values %count;
    $lost += $expected - keys %count;
    my @ids = map { $_->{id} } @{ $seen[$c] };
    $disorder++ if join(',', @ids) ne join(',', sort { $a <=> $b } @ids);
}
is $lost, 0, 'no message was lost (' . 2 * $USERS * $expected . ' deliveries)';
is $doubled, 0, 'none was delivered twice';
is $disorder, 0, 'every connection saw its messages in order';

my ($ok, @bad) = split /\n/, slurp($http_log->filename);
ok $ok > 100, "HTTP requests on every plugin's routes ran throughout ($ok)";
is scalar @bad, 0, 'none failed' or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];

my $status = curl_json('curl -s', 'GET', $server->url . '/_status')->{json};
for my $p (@{ $status->{plugins} }) {
    is_deeply [$p->{generation}, $p->{version}], [11, '1.0.0'], "$p->{name}: ten swaps, generation 11, back at 1.0.0";
}
copy($v2{chat}, "$server->{plugin_dir}/.chat.new");
rename "$server->{plugin_dir}/.chat.new", "$server->{plugin_dir}/chat.so";
my $chat;
for (1 .. 100) {
    ($chat) = grep { $_->{name} eq 'chat' } @{ curl_json('curl -s', 'GET', $server->url . '/_status')->{json}{plugins} };
    last if $chat->{generation} == 12;
    sleep 0.05;
}
is $chat->{version}, '2.0.0', 'the new version shows in /_status';
my $log = $server->log;
my $unloaded = () = $log =~ /generation \d+ unloaded/g;
ok $unloaded >= 40, "every retired generation was unloaded ($unloaded)";
$_->finish for grep { defined } @tx;
Mojo::IOLoop->one_tick for 1 .. 20;
is $server->stop, 0, 'forumd exits 0';
done_testing;
