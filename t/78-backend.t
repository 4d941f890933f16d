# Which backend serves, as /_status tells it; and on PostgreSQL what only PostgreSQL has: a server that
# cannot be reached at start is a clear error, a connection string is checked by forumd -t, every table
# tells forumd of its writes (a statement trigger notifying forum_tables), so a cached feed follows a
# write made behind forumd's back at once.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Net::EmptyPort qw(empty_port);
use Test::More;
use Time::HiRes qw(sleep);
use t::Util;

my $server = spawn_forumd(plugins => [qw(auth posts)], settings => "auth:\n  scrypt-n: 1024");
my $status = curl_json('curl -s', 'GET', $server->url . '/_status');
is $status->{status}, 200, '/_status answers';
my $db = $status->{json}{database};

if (backend() eq 'sqlite') {
    is_deeply $db, { backend => 'sqlite', state => 'ok' }, '/_status: the database is SQLite, in order' or diag explain $db;
    is $server->stop, 0, 'forumd stops cleanly';
    done_testing;
    exit;
}

is $db->{backend}, 'postgresql', '/_status: the database is PostgreSQL';
is $db->{state}, 'connected', 'and connected';
is $db->{connections}, 4, 'with the 4 connections configured';
is $db->{connections_up}, 4, 'all of them up';
is $db->{statement_timeout_ms}, 5000, 'and its statement timeout';

# every table of the plugins tells of its writes; the core's own bookkeeping does not
my %triggered = map { $_->[0] => 1 } ($server->db_query("SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
                                                         . "WHERE g.tgname = 'forum_tables_notify'"));
ok $triggered{$_}, "table $_ has the notifying trigger" for qw(users posts categories);
ok !$triggered{$_}, "the core's $_ has none" for qw(forum_migrations sessions forum_sequences);

# a feed page rendered once, then a write behind forumd's back: the next page shows it
my $jar = tempdir(CLEANUP => 1) . '/jar';
my $res = curl_json('curl -s', 'POST', $server->url . '/api/auth/register', cookie_jar => $jar,
                    json => { nickname => 'pia', email => 'pia@example.org', password => 'long enough secret', first_name => 'P',
                              last_name => 'G', age => 30, gender => 'other' });
is $res->{status}, 201, 'pia registers';
$res = curl_json('curl -s', 'POST', $server->url . '/api/posts', cookie_jar => $jar,
                 json => { title => 'Before', body => 'as written', categories => ['general'] });
is $res->{status}, 201, 'pia posts';
my $id = $res->{json}{post}{id};
$res = curl_json('curl -s', 'GET', $server->url . '/api/posts', cookie_jar => $jar);
is $res->{json}{posts}[0]{title}, 'Before', 'the feed shows the post';
$server->db_query("UPDATE posts SET title = 'After' WHERE id = $id");
my $title;
for (1 .. 100) {
    $title = curl_json('curl -s', 'GET', $server->url . '/api/posts', cookie_jar => $jar)->{json}{posts}[0]{title};
    last if $title eq 'After';
    sleep 0.05;
}
is $title, 'After', 'a write from psql reaches the cached feed (its notification moved the version)';

# sessions found are kept in memory on PostgreSQL; a row deleted anywhere ends the session here at once
is curl_json('curl -s', 'GET', $server->url . '/api/auth/me', cookie_jar => $jar)->{status}, 200, 'pia is logged in (her session is now cached)';
$server->db_query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE nickname = 'pia')");
my $code;
for (1 .. 100) {
    $code = curl_json('curl -s', 'GET', $server->url . '/api/auth/me', cookie_jar => $jar)->{status};
    last if $code == 401;
    sleep 0.05;
}
is $code, 401, 'a session deleted from psql is over for forumd too (its notification emptied the cached entry)';
is $server->stop, 0, 'forumd stops cleanly';

# a server that cannot be reached: forumd says so in one line and exits 1
my $dir = tempdir(CLEANUP => 1);
my $closed = empty_port();
(my $unreachable = $ENV{FORUMD_TEST_POSTGRES}) =~ s/\bport=\d+/port=$closed/;
$unreachable .= ' dbname=postgres connect_timeout=5';
my $plugins = build_dir() . '/plugins';
my $yaml = "listen:\n  - port: @{[ empty_port() ]}\n    host: 127.0.0.1\n"
         . "database:\n  postgres: \"$unreachable\"\n"
         . "plugins:\n  dir: $plugins\n  load: [auth]\n";
open my $fh, '>', "$dir/forum.yaml" or die $!;
print $fh $yaml;
close $fh;
my $out = `@{[ forumd_bin() ]} -c $dir/forum.yaml 2>&1`;
is $? >> 8, 1, 'forumd exits 1 when PostgreSQL cannot be reached';
like $out, qr/^cannot connect to PostgreSQL: .*port $closed failed: Connection refused.*$/m, 'and says why, in one line' or diag $out;

# forumd -t reads the connection string with libpq's parser and names its line
$yaml =~ s/postgres: "[^"]*"/postgres: "host=127.0.0.1 dbname='forum"/;
open $fh, '>', "$dir/forum.yaml" or die $!;
print $fh $yaml;
close $fh;
$out = `@{[ forumd_bin() ]} -t -c $dir/forum.yaml 2>&1`;
is $? >> 8, 1, 'forumd -t refuses a connection string libpq cannot read';
like $out, qr/^\Q$dir\E\/forum\.yaml:5: database\.postgres: not a libpq connection string/m, 'naming FILE:LINE' or diag $out;

done_testing;
