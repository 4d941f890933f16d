# forumd -t checks a configuration; forumd refuses to start on a bad one, naming FILE:LINE.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Net::EmptyPort qw(empty_port);
use Test::More;
use t::Util;

my $dir = tempdir(CLEANUP => 1);
my ($cert, $key) = tls_files();
my $plugins = build_dir() . '/plugins';
my $public = root_dir() . '/public';

sub write_conf {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die $!;
    print $fh $text;
    close $fh;
    return "$dir/$name";
}

sub run_forumd {
    my @args = @_;
    my $out = `@{[ forumd_bin() ]} @args 2>&1`;
    return ($? >> 8, $out);
}

my $good = <<"YAML";
listen:
  - port: 8080
    host: 127.0.0.1
  - port: 8443
    ssl:
      certificate-file: $cert
      key-file: $key
@{[ database_yaml("$dir/forum.db", flow => 1) =~ s/\n\z//r ]}
public-dir: $public
plugins:
  dir: $plugins
  load: [auth, posts, comments, chat]
YAML

subtest 'the shipped configuration checks' => sub {
    my ($rc, $out) = run_forumd('-t', '-c', root_dir() . '/conf/forum.yaml');
    is $rc, 0, 'conf/forum.yaml passes -t' or diag $out;
};

subtest 'a good configuration passes -t and nothing starts' => sub {
    my $file = write_conf('good.yaml', $good);
    my ($rc, $out) = run_forumd('-t', '-c', $file);
    is $rc, 0, 'exit 0';
    like $out, qr/good/, 'says so';
    if (backend() eq 'sqlite') {
        ok !-e "$dir/forum.db", 'no database is created by a check';
    } else {
        is db_value("$dir/forum.db", "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"), 0,
            'no table is created by a check';
    }
};

my @bad = (
    ['unknown top-level key', "$good\nbogus: 1\n", 14, qr/unknown key 'bogus'/],
    ['unknown listen key', $good =~ s/    host: 127.0.0.1/    hots: 127.0.0.1/r, 3, qr/listen: unknown key 'hots'/],
    ['port out of range', $good =~ s/port: 8080/port: 80800/r, 2, qr/listen.port: must be between 1 and 65535/],
    ['port not a number', $good =~ s/port: 8080/port: eighty/r, 2, qr/listen.port: expected a whole number/],
    ['wrong type for load', $good =~ s/load: \[auth, posts, comments, chat\]/load: auth/r, 12, qr/plugins.load: expected a list/],
    ['a plugin file that is missing', $good =~ s/chat\]/chat, nosuch]/r, 12, qr/cannot read .*nosuch\.so/],
    ['unreadable certificate', $good =~ s/\Q$cert\E/$dir\/none.pem/r, 6, qr/certificate-file: cannot read/],
    ['missing database folder', $good =~ s/\Q$dir\E\/forum.db/$dir\/nodir\/forum.db/r, 8, qr/database: .*nodir/, 'sqlite'],
    ['bad size', "$good\nlimits:\n  body-size: lots\n", 15, qr/limits.body-size: expected a size/],
    ['bad boolean', "$good  watch: maybe\n", 13, qr/plugins.watch: expected true or false/],
    ['YAML syntax error', "$good\nlisten: [\n", 15, qr/./],
    ['a list at the top', "- a\n- b\n", 1, qr/expected a mapping/],
    ['bus: redis without a port', "$good\nbus:\n  redis: \"127.0.0.1\"\n", 15, qr/bus\.redis: '127\.0\.0\.1' is not HOST:PORT/],
    ['bus: redis with a port out of range', "$good\nbus:\n  redis: \"localhost:70000\"\n", 15, qr/bus\.redis: .* is not HOST:PORT/],
    ['bus: an IPv6 address without brackets', "$good\nbus:\n  redis: \"::1:6379\"\n", 15, qr/bus\.redis: .* is not HOST:PORT \(like 127\.0\.0\.1:6379 or \[::1\]:6379\)/],
    ['bus: an unknown key', "$good\nbus:\n  redis: \"127.0.0.1:6379\"\n  channel: x\n", 16, qr/bus: unknown key 'channel' \(redis\)/],
    ['bus: no redis', "$good\nbus: {}\n", 14, qr/bus\.redis: required/],
    ['bus over a SQLite file', "$good\nbus:\n  redis: \"127.0.0.1:6379\"\n", 14, qr/bus needs database\.postgres, not a SQLite file/, 'sqlite'],
    ['node: a name with a space', "$good\nnode: web 1\n", 14, qr/node: expected a name of 1 to 64 letters/],
);
for my $case (@bad) {
    my ($name, $text, $line, $re, $only) = @$case;
    subtest $name => sub {
        plan skip_all => 'SQLite only: a SQLite database is a file, whose folder must exist; a PostgreSQL database is a conninfo'
            if $only && backend() ne $only;
        my $file = write_conf('bad.yaml', $text);
        for my $mode (['-t'], []) {
            my ($rc, $out) = run_forumd(@$mode, '-c', $file);
            is $rc, 1, "exit 1 (@{[ @$mode ? '-t' : 'run' ]})";
            like $out, qr/^\Q$file\E:$line: /m, "reports $file:$line";
            like $out, $re, 'with a message that says what is wrong';
            unlike $out, qr/Sanitizer|Segmentation/, 'without a crash';
        }
    };
}

subtest 'a missing configuration file' => sub {
    my ($rc, $out) = run_forumd('-c', "$dir/nothing.yaml");
    is $rc, 1, 'exit 1';
    like $out, qr/\Q$dir\E\/nothing\.yaml: cannot open/, 'names the file';
};

subtest 'a certificate file that is not a certificate' => sub {
    my $junk = write_conf('junk.pem', "not a certificate\n");
    my $file = write_conf('junk.yaml', $good =~ s/\Q$cert\E/$junk/r);
    my ($rc, $out) = run_forumd('-t', '-c', $file);
    is $rc, 1, 'exit 1';
    like $out, qr/^\Q$file\E:4: cannot load certificate-file/m, 'reports the listener\'s line';
};

subtest 'a port in use' => sub {
    my $port = empty_port();
    my $holder = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 5, ReuseAddr => 1) or die $!;
    my $file = write_conf('busy.yaml', $good =~ s/port: 8080/port: $port/r =~ s/port: 8443/port: @{[ empty_port() ]}/r);
    my ($rc, $out) = run_forumd('-c', $file);
    is $rc, 1, 'exit 1';
    like $out, qr/^\Q$file\E:2: cannot listen on 127\.0\.0\.1:$port: address already in use/m, 'says which listener and why';
};

subtest 'usage' => sub {
    my ($rc, $out) = run_forumd();
    is $rc, 1, 'no -c: exit 1';
    like $out, qr/usage: forumd/, 'with usage';
    ($rc, $out) = run_forumd('-v');
    is $rc, 0, '-v exits 0';
    like $out, qr/^forumd \d+\.\d+\.\d+/, 'and prints the version';
};

done_testing;
