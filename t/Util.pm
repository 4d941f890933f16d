package t::Util;

# Test helpers: start forumd on free loopback ports with a generated configuration and a
# temporary database, talk to it over HTTP/1.1, HTTPS/1.1 and HTTPS/2, and always stop it by PID.
#
# The database is SQLite (a file) unless FORUMD_TEST_POSTGRES holds a libpq conninfo of a PostgreSQL role
# that may CREATE DATABASE (make test-pg; t/pg-cluster starts a private server): then every database of the
# suite is a fresh PostgreSQL database. A test names its database by a path either way ("$dir/forum.db");
# the same path is the same database, so a restart keeps its data on both backends.

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use B ();
use Net::EmptyPort qw(empty_port wait_port);
use POSIX qw(:sys_wait_h);
use Scalar::Util qw(weaken);
use Test::More;
use Time::HiRes qw(sleep time);
use Exporter 'import';

our @EXPORT = qw(root_dir build_dir forumd_bin spawn_forumd run_with_curl curl_json json_decode json_encode
                 mojo_ua probe_login tls_files slurp ws_connect cookie_of spawn_haproxy
                 backend database_yaml db_query db_value db_conninfo db_copy seed_db_args seed_failed spawn_pg_cluster spawn_redis);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
sub json_decode { $JSON->decode($_[0]) }
sub json_encode { $JSON->encode($_[0]) }

sub root_dir { abs_path(dirname(__FILE__) . '/..') }

# FORUMD_BUILD selects the build under test (build, or build-asan for the sanitizer run).
sub build_dir {
    my $b = $ENV{FORUMD_BUILD} // 'build';
    return $b =~ m{^/} ? $b : root_dir() . "/$b";
}

sub forumd_bin { build_dir() . '/forumd' }

sub tls_files {
    my $dir = root_dir() . '/var/tls';
    return ("$dir/cert.pem", "$dir/key.pem");
}

sub slurp {
    my $path = shift;
    open my $fh, '<', $path or return '';
    local $/;
    return scalar <$fh>;
}

# --- the database under test ---

# 'postgres' when FORUMD_TEST_POSTGRES is set, else 'sqlite'.
sub backend { length($ENV{FORUMD_TEST_POSTGRES} // '') ? 'postgres' : 'sqlite' }

my %pg_name;     # a test's database path => the PostgreSQL database that stands for it
my @pg_created;  # [name, pid of the process that created it, the cluster's conninfo]
my $pg_count = 0;

# A database name no other test of the run has; it starts with the test's number (t55_...), which
# PostgreSQL's log shows on each line.
sub _pg_new_name {
    my ($number) = $0 =~ m{(\d+)-[^/]*\.t\z};
    return sprintf 't%s_%d_%d_%s', $number // 'x', $$, ++$pg_count, join '', map { ('a' .. 'z')[rand 26] } 1 .. 6;
}

# The PostgreSQL database for `path`, created on first use.
sub _pg_database {
    my ($path) = @_;
    return $pg_name{$path} //= do {
        my $name = _pg_new_name();
        _psql("$ENV{FORUMD_TEST_POSTGRES} dbname=postgres", "CREATE DATABASE $name;\n");
        push @pg_created, [$name, $$, $ENV{FORUMD_TEST_POSTGRES}];
        $name;
    };
}

# The libpq conninfo of the database `path` stands for (PostgreSQL only).
sub db_conninfo {
    my ($path) = @_;
    die 'db_conninfo: the suite runs on SQLite' unless backend() eq 'postgres';
    return "$ENV{FORUMD_TEST_POSTGRES} dbname=" . _pg_database($path);
}

# The configuration's `database:` entry for `path`: the path itself on SQLite; on PostgreSQL the mapping,
# as a block or, with flow => 1, on one line (for tests that count the configuration's lines);
# connections => N and statement_timeout => S change the pool's size and the time limit (PostgreSQL).
sub database_yaml {
    my ($path, %opts) = @_;
    return "database: $path\n" if backend() eq 'sqlite';
    (my $conninfo = db_conninfo($path)) =~ s/(["\\])/\\$1/g;
    my ($n, $timeout) = ($opts{connections} // 4, $opts{statement_timeout} // 5);
    return qq(database: {postgres: "$conninfo", connections: $n, statement-timeout: $timeout}\n) if $opts{flow};
    return qq(database:\n  postgres: "$conninfo"\n  connections: $n\n  statement-timeout: $timeout\n);
}

# The arguments that point tools/seed at the database `path` stands for.
sub seed_db_args {
    my ($path) = @_;
    return backend() eq 'sqlite' ? ('--db', $path) : ('--postgres', db_conninfo($path));
}

# What a test does when tools/seed fails: on SQLite the build is broken and the run stops (BAIL_OUT); on
# PostgreSQL (the third pass of make test) this file fails and the other files still run.
sub seed_failed {
    my ($why) = @_;
    BAIL_OUT($why) if backend() eq 'sqlite';
    fail($why);
    done_testing();
    exit 1;
}

# db_copy($from, $to): $to becomes a copy of the database $from (whose server has stopped).
sub db_copy {
    my ($from, $to) = @_;
    if (backend() eq 'sqlite') {
        copy($from, $to) or die "copy $from: $!";
        return;
    }
    die "db_copy: $to is in use already" if $pg_name{$to};
    my $name = _pg_new_name();
    _psql("$ENV{FORUMD_TEST_POSTGRES} dbname=postgres", "CREATE DATABASE $name TEMPLATE " . _pg_database($from) . ";\n");
    push @pg_created, [$name, $$, $ENV{FORUMD_TEST_POSTGRES}];
    $pg_name{$to} = $name;
}

# db_query($path, $sql, @params) runs SQL (one statement or several) on the database `path` stands for,
# from another process (sqlite3, waiting up to 5 s for a lock; or psql), and returns the rows of every
# statement, each an array ref of its values as the command-line tool prints them (bytes; NULL is undef).
# Each ? outside quotes takes the next parameter as a literal: undef is NULL, a Perl number a number,
# anything else a quoted string. Dies with the tool's message when the SQL fails.
sub db_query {
    my ($path, $sql, @params) = @_;
    $sql =~ s/('(?:[^']|'')*'|"(?:[^"]|"")*")|\?/defined $1 ? $1 : _sql_literal(\@params)/ge;
    die "db_query: more parameters than ? in $sql" if @params;
    utf8::encode($sql) if utf8::is_utf8($sql);
    $sql .= ";" unless $sql =~ /;\s*\z/;
    my $out = backend() eq 'sqlite' ? _sqlite3($path, "$sql\n") : _psql(db_conninfo($path), "$sql\n");
    my ($fs, $rs) = backend() eq 'sqlite' ? ("\x1f", "\x1e") : ("\x1f", "\0");
    return map { [map { $_ eq "\x02N" ? undef : $_ } split /\Q$fs\E/, $_, -1] } split /\Q$rs\E/, $out;
}

# The first value of the first row (counts and single values), or undef when there is no row.
sub db_value {
    my @rows = db_query(@_);
    return @rows ? $rows[0][0] : undef;
}

sub _sql_literal {
    my ($params) = @_;
    die 'db_query: more ? than parameters' unless @$params;
    my $v = shift @$params;
    return 'NULL' unless defined $v;
    my $flags = B::svref_2object(\$v)->FLAGS;
    return $v if $flags & (B::SVp_IOK | B::SVp_NOK) && !($flags & B::SVp_POK) && $v =~ /^-?\d+(?:\.\d+)?\z/;
    utf8::encode($v) if utf8::is_utf8($v);
    $v =~ s/'/''/g;
    return "'$v'";
}

# runs the SQL text through a command-line client; returns what it printed, or dies with its errors
sub _client {
    my ($what, $sql, @cmd) = @_;
    # removed here, not at exit: a forked child of a test may run SQL in a loop and leave by POSIX::_exit
    my $dir = tempdir();
    open my $fh, '>', "$dir/in.sql" or die $!;
    binmode $fh;
    print $fh $sql;
    close $fh;
    my $out = `@{[ join ' ', map { _sh($_) } @cmd ]} <'$dir/in.sql' 2>'$dir/err'`;
    my ($status, $err) = ($?, slurp("$dir/err"));
    remove_tree($dir);
    die "$what failed (" . ($status >> 8) . "): ${err}SQL: $sql" if $status;
    return $out;
}

# rows end with RS, values are separated by US, NULL prints as STX N
sub _sqlite3 {
    my ($path, $sql) = @_;
    return _client('sqlite3', $sql, 'sqlite3', '-batch', '-bail', '-noheader', '-list', '-separator', "\x1f",
                   '-newline', "\x1e", '-nullvalue', "\x02N", '-cmd', '.timeout 5000', $path);
}

# rows end with NUL (which text never holds in PostgreSQL), values are separated by US, NULL prints as STX N
sub _psql {
    my ($conninfo, $sql) = @_;
    local $ENV{PGCLIENTENCODING} = 'UTF8';
    local $ENV{PGCONNECT_TIMEOUT} = 10;
    return _client('psql', $sql, 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-F', "\x1f", '-0',
                   '-P', "null=\x02N", '-d', $conninfo);
}

# Servers still running when the test ends stop first; then the PostgreSQL databases this process
# created are dropped, so that a whole run leaves the cluster as it found it.
my @live_servers;
END {
    local $?;
    if (@pg_created) {
        $_ && $_->{owner} == $$ && $_->stop for @live_servers;
        for my $db (grep { $_->[1] == $$ } @pg_created) {
            eval { _psql("$db->[2] dbname=postgres", "DROP DATABASE IF EXISTS $db->[0] WITH (FORCE);\n") };
            # a test's own cluster (spawn_pg_cluster) went with its databases
            warn "dropping $db->[0]: $@" if $@ && $@ !~ /connection to server .* failed/;
        }
    }
}

# spawn_forumd(%opts) starts a server and returns a guard; the server stops when the guard goes.
#   plugins   => [names]       plugins to load (default: the five feature plugins)
#   plugin_files => {name => path}  .so files to place in a private plugins dir under those names
#   extra     => "yaml"        more top-level configuration, appended verbatim
#   limits    => {key => val}  entries of the limits mapping
#   settings  => "yaml"        the plugins.settings mapping, indented under it
#   db        => path          reuse a database (restarts); on PostgreSQL the database that path stands for
#   database  => {connections => N, statement_timeout => S}  the PostgreSQL pool (database_yaml)
#   watch     => 1             plugins.watch: swap plugins whose files change
#   starter   => 1             run under start_server(1), which passes the listening sockets
#   public_dir => path         the client's files (default: public/)
#   expect_fail => 1           the server is expected to exit at once; the guard holds its output
#   nowait => 1                return at once, without waiting for its ports (then $guard->wait_ready)
sub spawn_forumd {
    my %opts = @_;
    my $dir = tempdir(CLEANUP => 1);
    my $plugins = $opts{plugins} // [qw(auth posts comments chat rooms)];
    my $plugin_dir = build_dir() . '/plugins';
    if ($opts{plugin_files} || grep { !-e "$plugin_dir/$_.so" } @$plugins) {
        my $own = "$dir/plugins";
        mkdir $own;
        for my $name (@$plugins) {
            my $src = $opts{plugin_files}{$name} // (-e "$plugin_dir/$name.so" ? "$plugin_dir/$name.so"
                                                                              : build_dir() . "/t-plugins/$name.so");
            copy($src, "$own/$name.so") or die "copy $src: $!";
        }
        $plugin_dir = $own;
    }
    my ($port, $tls_port) = (empty_port(), undef);
    $tls_port = empty_port({ port => $port + 1 });
    my ($cert, $key) = tls_files();
    my %limits = (%{ $opts{limits} // {} });
    my $limits = join '', map { "  $_: $limits{$_}\n" } sort keys %limits;
    my $db = $opts{db} // "$dir/forum.db";
    my $conf = <<"YAML";
listen:
  - port: $port
    host: 127.0.0.1
  - port: $tls_port
    host: 127.0.0.1
    ssl:
      certificate-file: $cert
      key-file: $key
@{[ database_yaml($db, %{ $opts{database} // {} }) =~ s/\n\z//r ]}
public-dir: @{[ $opts{public_dir} // root_dir() . '/public' ]}
plugins:
  dir: $plugin_dir
  load: [@{[ join ', ', @$plugins ]}]
  watch: @{[ $opts{watch} ? 'true' : 'false' ]}
YAML
    $conf .= "  settings:\n" . join('', map { "    $_\n" } split /\n/, $opts{settings}) if $opts{settings};
    $conf .= "limits:\n$limits" if $limits;
    $conf .= $opts{extra} if $opts{extra};
    my $conf_file = "$dir/forum.yaml";
    open my $fh, '>', $conf_file or die $!;
    print $fh $conf;
    close $fh;

    my $log = "$dir/forumd.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log or die $!;
        open STDERR, '>>', $log or die $!;
        chdir root_dir();
        if ($opts{starter}) {
            # start_server(1) holds the listening sockets and restarts forumd on SIGHUP
            exec 'start_server', "--port=127.0.0.1:$port", "--port=127.0.0.1:$tls_port", '--interval=1', '--',
                forumd_bin(), '-c', $conf_file;
        }
        exec forumd_bin(), '-c', $conf_file;
        die "exec: $!";
    }
    my $self = bless { pid => $pid, owner => $$, port => $port, tls_port => $tls_port, dir => $dir, log => $log,
                       conf => $conf_file, db => $db, plugin_dir => $plugin_dir }, 'forumd::Guard';
    push @live_servers, $self;
    weaken($live_servers[-1]);
    return $self if $opts{nowait};
    return $self->wait_ready(expect_fail => $opts{expect_fail});
}

# spawn_pg_cluster() starts a private PostgreSQL (t/pg-cluster) for a test that stops, restarts or
# breaks it, so that the suite's own server stays as it was. Returns a guard (->conninfo, ->pid of the
# postmaster, ->dir, ->restart, ->stop, which stops it by that PID and removes its folder) that stops it
# when it goes. A server on it: `local $ENV{FORUMD_TEST_POSTGRES} = $pg->conninfo;` around spawn_forumd.
sub spawn_pg_cluster {
    # in TMPDIR itself, not under a private folder: the cluster's user must reach it
    my $dir = tempdir('forumd-pg.XXXXXX', TMPDIR => 1);
    my $conninfo = `@{[ _sh(root_dir() . '/t/pg-cluster') ]} start @{[ _sh($dir) ]}`;
    die "t/pg-cluster start $dir failed\n" if $? || $conninfo !~ /\S/;
    chomp $conninfo;
    return bless { dir => $dir, conninfo => $conninfo, owner => $$ }, 'pg::Guard';
}

# spawn_redis() starts a private Redis (Debian redis-server) on a free loopback port, in a temporary folder,
# with nothing saved to disk. Returns a guard (->port, ->addr "127.0.0.1:PORT", ->pid, ->stop, ->kill,
# ->start again on the same port, ->cli(ARGS) for redis-cli's answer) that stops it by PID when it goes.
sub spawn_redis {
    my $dir = tempdir(CLEANUP => 1);
    my $self = bless { dir => $dir, port => empty_port(), owner => $$ }, 'redis::Guard';
    $self->start;
    return $self;
}

# spawn_haproxy($server, %opts) starts HAProxy (Debian package haproxy) on a free loopback port in front
# of $server's plain port: TLS with the test certificate, HTTP/2 and HTTP/1.1 by ALPN, WebSockets
# passed through, X-Forwarded-For and X-Forwarded-Proto set. Returns a guard (->url, ->port, ->log,
# ->cfg, ->stop) that stops it by PID when it goes; undef when haproxy is not installed.
sub spawn_haproxy {
    my ($server, %opts) = @_;
    my $bin = $opts{bin} // '/usr/sbin/haproxy';
    return undef unless -x $bin;
    my $dir = tempdir(CLEANUP => 1);
    # HAProxy takes the certificate and its key in one PEM file
    my ($cert, $key) = tls_files();
    my $pem = "$dir/site.pem";
    open my $out, '>', $pem or die "$pem: $!";
    print $out slurp($cert), slurp($key);
    close $out;
    my $port = empty_port();
    # servers => [$node, ...]: spread over several forumd nodes, request by request and WebSocket by WebSocket;
    # one that stops answering is left out within a second, and what could not reach it goes to another
    my $servers = join '', map { "    server node$_ 127.0.0.1:" . $opts{servers}[$_]->port . " check inter 500ms fall 1 rise 1\n" }
                           0 .. $#{ $opts{servers} // [] };
    $servers = "    balance roundrobin\n    option redispatch\n    retries 3\n    option httpchk GET /\n$servers" if $servers;
    $servers ||= "    server forumd 127.0.0.1:" . $server->port . "\n";
    my $cfg = <<"CFG";
global
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # a WebSocket, once upgraded, is a tunnel: it may stay quiet (forumd pings every 30 s)
    timeout tunnel 1h
    timeout http-request 10s

frontend forum
    bind 127.0.0.1:$port ssl crt $pem alpn h2,http/1.1
    # what the browser used; a client's own X-Forwarded-Proto or X-Forwarded-Host would otherwise pass
    http-request set-header X-Forwarded-Proto https
    http-request del-header X-Forwarded-Host
    # appends the client's address to X-Forwarded-For (forumd reads it from the right)
    option forwardfor
    default_backend forumd

backend forumd
$servers
CFG
    $cfg .= $opts{extra} if $opts{extra};
    open my $fh, '>', "$dir/haproxy.cfg" or die $!;
    print $fh $cfg;
    close $fh;
    my $log = "$dir/haproxy.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log or die $!;
        open STDERR, '>>', $log or die $!;
        exec $bin, '-f', "$dir/haproxy.cfg", '-db';
        die "exec: $!";
    }
    my $self = bless { pid => $pid, owner => $$, port => $port, dir => $dir, log => $log, cfg => "$dir/haproxy.cfg" },
        'haproxy::Guard';
    my $deadline = time + 20;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            die "haproxy did not start:\n" . slurp($log);
        }
        last if _port_open($port);
        sleep 0.05;
    }
    die "haproxy did not open port $port:\n" . slurp($log) unless _port_open($port);
    return $self;
}

# Sends $sig to a child of this process, waits up to 10 s for it to end (then SIGKILL) and reaps it.
sub _end_child {
    my ($pid, $sig) = @_;
    return unless $pid;
    kill $sig, $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub _port_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# run_with_curl($server, sub { my ($label, $url_base, $curl) = @_ }) runs the same checks over
# HTTP/1.1, HTTPS/1.1 and HTTPS/2; $curl is the curl command line to extend.
sub run_with_curl {
    my ($server, $cb) = @_;
    my @protos = (
        ['http/1.1', "http://127.0.0.1:$server->{port}", 'curl --silent --show-error --http1.1'],
        ['https/1.1', "https://127.0.0.1:$server->{tls_port}", 'curl --silent --show-error --insecure --http1.1'],
        ['https/2', "https://127.0.0.1:$server->{tls_port}", 'curl --silent --show-error --insecure --http2'],
    );
    for my $p (@protos) {
        subtest $p->[0] => sub { $cb->(@$p) };
    }
}

# curl_json($curl, $method, $url, %opts) -> {status, headers => {lc name => value}, body, json}
#   body => string, json => ref (sent as application/json), headers => [..], cookie_jar => file
sub curl_json {
    my ($curl, $method, $url, %opts) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my @args = ('-X', $method, '-D', "$dir/headers", '-o', "$dir/body", '-w', '%{http_code}');
    my $body = $opts{body};
    if (exists $opts{json}) {
        $body = json_encode($opts{json});
        push @args, '-H', 'Content-Type: application/json';
    }
    if (defined $body) {
        open my $fh, '>', "$dir/req" or die $!;
        binmode $fh;
        print $fh $body;
        close $fh;
        push @args, '--data-binary', "\@$dir/req";
    }
    push @args, map { ('-H', $_) } @{ $opts{headers} // [] };
    push @args, '-b', $opts{cookie_jar}, '-c', $opts{cookie_jar} if $opts{cookie_jar};
    my $cmd = join ' ', $curl, map { _sh($_) } @args, $url;
    my $status = `$cmd`;
    my %headers;
    my $raw = slurp("$dir/headers");
    for my $line (split /\r?\n/, $raw) {
        $headers{ lc $1 } = $2 if $line =~ /^([^:\s]+):\s*(.*)$/;
    }
    my $res = { status => $status + 0, headers => \%headers, body => slurp("$dir/body"), raw_headers => $raw };
    $res->{json} = eval { json_decode($res->{body}) } if ($headers{'content-type'} // '') =~ /json/;
    return $res;
}

sub _sh {
    my $s = shift;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

sub mojo_ua {
    require Mojo::UserAgent;
    my $ua = Mojo::UserAgent->new(insecure => 1, inactivity_timeout => 30, request_timeout => 30);
    return $ua;
}

# Logs in through the probe plugin (tests of the core only) and returns the cookie jar file.
sub probe_login {
    my ($server, $user_id) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $res = curl_json('curl -s', 'POST', "http://127.0.0.1:$server->{port}/api/probe/login",
                        json => { user_id => $user_id }, cookie_jar => $jar);
    die "probe login failed: $res->{status} $res->{body}" unless $res->{status} == 200;
    return $jar;
}

# The `sid=...` pair of a curl cookie jar, for a Cookie header.
sub cookie_of {
    my $jar = shift;
    for my $line (split /\n/, slurp($jar)) {
        my @f = split /\t/, $line;
        return "sid=$f[6]" if @f >= 7 && $f[5] eq 'sid';
    }
    return undef;
}

# ws_connect($url, %opts) opens a WebSocket and returns a t::WS (check ->{error} for a refused upgrade).
#   cookie => "sid=...", origin => "...", headers => {...}
sub ws_connect { t::WS->connect(@_) }

package t::WS;

# A blocking WebSocket client over Mojo::UserAgent for tests: frames are queued as they arrive and
# read with next/wait_for, each with a timeout.

use Mojo::IOLoop;
use Time::HiRes qw(time);

sub _wait_until {
    my ($cond, $timeout) = @_;
    local $_; # callers loop with map/for over constants; the event loop must not see their $_
    my $deadline = time + ($timeout // 10);
    my $timer = Mojo::IOLoop->recurring(0.05 => sub { });
    my $met;
    # the condition may consume what it finds: evaluate it once per turn, and return that result
    Mojo::IOLoop->one_tick until ($met = $cond->()) || time > $deadline;
    Mojo::IOLoop->remove($timer);
    return $met;
}

sub connect {
    my ($class, $url, %opts) = @_;
    my $self = bless { queue => [], ua => t::Util::mojo_ua() }, $class;
    my %headers = %{ $opts{headers} // {} };
    $headers{Cookie} = $opts{cookie} if $opts{cookie};
    $headers{Origin} = $opts{origin} if $opts{origin};
    my $tx = $self->{ua}->build_websocket_tx($url => \%headers);
    my $done;
    $self->{ua}->start($tx, sub {
        my (undef, $tx) = @_;
        $done = 1;
        unless ($tx->is_websocket) {
            $self->{error} = $tx->res->code // 'connection failed';
            $self->{body} = $tx->res->body;
            return;
        }
        $self->{tx} = $tx;
        $tx->max_websocket_size(16 * 1024 * 1024);
        # the frame's bytes as they came: json_decode reads UTF-8 (the `message` event would decode them twice)
        $tx->on(text => sub { push @{ $self->{queue} }, t::Util::json_decode($_[1]) });
        $tx->on(finish => sub { my (undef, $code, $reason) = @_; $self->{closed} = [$code // 1006, $reason // '']; });
    });
    _wait_until(sub { $done }, 15) or $self->{error} = 'timeout';
    return $self;
}

sub send {
    my ($self, $frame) = @_;
    # json_encode already gives UTF-8 bytes: sent as they are, not encoded a second time
    $self->{tx}->send(ref $frame ? { text => t::Util::json_encode($frame) } : $frame);
}

# One text frame of exactly these bytes (which need not be UTF-8).
sub send_bytes {
    my ($self, $bytes) = @_;
    $self->{tx}->send({ text => $bytes });
}

sub send_raw {
    my ($self, $data) = @_;
    $self->{tx}->send($data);
}

# The next frame in arrival order, or undef after the timeout.
sub next {
    my ($self, $timeout) = @_;
    _wait_until(sub { @{ $self->{queue} } || $self->{closed} }, $timeout // 5);
    return shift @{ $self->{queue} };
}

# The first frame of `type` (others stay queued), or undef after the timeout.
sub wait_for {
    my ($self, $type, $timeout) = @_;
    my $found;
    _wait_until(sub {
        for my $i (0 .. $#{ $self->{queue} }) {
            if (($self->{queue}[$i]{type} // '') eq $type) {
                $found = splice @{ $self->{queue} }, $i, 1;
                return 1;
            }
        }
        return $self->{closed};
    }, $timeout // 5);
    return $found;
}

# Frames of `type` that arrive within `seconds` (used to show that nothing arrives).
sub collect {
    my ($self, $type, $seconds) = @_;
    _wait_until(sub { 0 }, $seconds);
    my @got = grep { ($_->{type} // '') eq $type } @{ $self->{queue} };
    $self->{queue} = [grep { ($_->{type} // '') ne $type } @{ $self->{queue} }];
    return @got;
}

# Waits for the connection to end; returns [code, reason] or undef.
sub wait_closed {
    my ($self, $timeout) = @_;
    _wait_until(sub { $self->{closed} }, $timeout // 10);
    return $self->{closed};
}

sub close {
    my $self = shift;
    return unless $self->{tx} && !$self->{closed};
    $self->{tx}->finish(1000);
    $self->wait_closed(5);
}

package forumd::Guard;

use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

# Waits for both ports, or for the process to end (dies then, unless expect_fail); returns the guard.
sub wait_ready {
    my ($self, %opts) = @_;
    # a sanitizer build starts slower
    my $deadline = time + 30;
    while (time < $deadline) {
        if (waitpid($self->{pid}, WNOHANG) == $self->{pid}) {
            $self->{exit} = $? >> 8;
            delete $self->{pid};
            last;
        }
        last if !$opts{expect_fail} && t::Util::_port_open($self->{port}) && t::Util::_port_open($self->{tls_port});
        sleep 0.05;
    }
    die "forumd did not start:\n" . t::Util::slurp($self->{log}) if !$opts{expect_fail} && !$self->{pid};
    return $self;
}

sub port { $_[0]{port} }
sub tls_port { $_[0]{tls_port} }
sub pid { $_[0]{pid} }
sub log { t::Util::slurp($_[0]{log}) }
sub url { "http://127.0.0.1:$_[0]{port}" }
sub tls_url { "https://127.0.0.1:$_[0]{tls_port}" }
# the database: the path that names it (the file itself on SQLite), the backend, the conninfo of its
# PostgreSQL database, and SQL run on it from another process (t::Util::db_query, db_value)
sub db { $_[0]{db} }
sub backend { t::Util::backend() }
sub db_conninfo { t::Util::db_conninfo($_[0]{db}) }
sub db_query { my $self = shift; t::Util::db_query($self->{db}, @_) }
sub db_value { my $self = shift; t::Util::db_value($self->{db}, @_) }

# Stops the server with SIGTERM (by PID) and returns its exit code; -1 if it had to be killed.
sub stop {
    my ($self, %opts) = @_;
    my $pid = delete $self->{pid};
    return $self->{exit} unless $pid;
    kill 'TERM', $pid;
    my $deadline = time + ($opts{timeout} // 30);
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{exit} = $? & 127 ? 128 + ($? & 127) : $? >> 8;
            $self->_check_sanitizers;
            return $self->{exit};
        }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $self->{exit} = -1;
    return -1;
}

sub _check_sanitizers {
    my $self = shift;
    my $log = $self->log;
    if ($log =~ /(ERROR: (?:Address|Leak)Sanitizer.*|runtime error:.*)/) {
        fail("sanitizer report in forumd's log: $1");
        diag $log;
    }
    # on PostgreSQL every entry into code that reaches the database runs on a fiber; one that does not is a bug
    if ($log =~ /(database: a data call off any fiber.*)/) {
        fail("a data call off any fiber in forumd's log: $1");
        diag $log;
    }
}

sub DESTROY {
    my $self = shift;
    local $?;
    # a forked child of the test holds a copy of the guard: only the process that started forumd stops it
    $self->stop if $self->{pid} && $self->{owner} == $$;
}

package haproxy::Guard;

use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

sub port { $_[0]{port} }
sub url { "https://127.0.0.1:$_[0]{port}" }
sub log { t::Util::slurp($_[0]{log}) }
sub cfg { t::Util::slurp($_[0]{cfg}) }

# Stops HAProxy by PID (SIGTERM: it closes its listeners and ends at once) and reaps it.
sub stop { t::Util::_end_child(delete $_[0]{pid}, 'TERM') }

sub DESTROY {
    my $self = shift;
    local $?;
    $self->stop if $self->{pid} && $self->{owner} == $$;
}

package redis::Guard;

use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

sub port { $_[0]{port} }
sub pid { $_[0]{pid} }
sub addr { "127.0.0.1:$_[0]{port}" }

sub start {
    my $self = shift;
    die "redis is running\n" if $self->{pid};
    my $log = "$self->{dir}/redis.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log or die $!;
        open STDERR, '>>', $log or die $!;
        exec '/usr/bin/redis-server', '--port', $self->{port}, '--bind', '127.0.0.1', '--dir', $self->{dir}, '--save', '',
            '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes';
        die "exec: $!";
    }
    $self->{pid} = $pid;
    my $deadline = time + 20;
    while (time < $deadline) {
        die "redis-server did not start:\n" . t::Util::slurp($log) if waitpid($pid, WNOHANG) == $pid;
        return $self if t::Util::_port_open($self->{port});
        sleep 0.05;
    }
    die "redis-server did not open port $self->{port}:\n" . t::Util::slurp($log);
}

sub cli {
    my ($self, @args) = @_;
    my $out = `redis-cli -h 127.0.0.1 -p $self->{port} @{[ join ' ', map { t::Util::_sh($_) } @args ]} 2>&1`;
    chomp $out;
    return $out;
}

# stops it by PID (SIGTERM), or at once (SIGKILL, as a crash)
sub stop { t::Util::_end_child(delete $_[0]{pid}, 'TERM') }
sub kill { t::Util::_end_child(delete $_[0]{pid}, 'KILL') }

sub DESTROY {
    my $self = shift;
    local $?;
    $self->stop if $self->{pid} && $self->{owner} == $$;
}

package pg::Guard;

sub conninfo { $_[0]{conninfo} }
sub dir { $_[0]{dir} }
sub pid { my $l = t::Util::slurp("$_[0]{dir}/data/postmaster.pid"); $l =~ /^(\d+)/ ? $1 : undef }

# stops the server (fast shutdown) and starts it again on the same port; dies when it does not come back
sub restart {
    my $self = shift;
    system(t::Util::root_dir() . '/t/pg-cluster', 'restart', $self->{dir}) == 0 or die "t/pg-cluster restart failed\n";
}

# stops the server by the PID in its postmaster.pid and removes its folder
sub stop {
    my $self = shift;
    return unless $self->{dir} && -d $self->{dir};
    system(t::Util::root_dir() . '/t/pg-cluster', 'stop', $self->{dir});
}

sub DESTROY {
    my $self = shift;
    local $?;
    $self->stop if $self->{owner} == $$;
}

1;
