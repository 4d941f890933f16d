# Plugin files the host must not trust: a truncated or malformed shared object renamed into
# plugins.dir is refused before dlopen maps it (the old generation keeps serving, forumd lives),
# and the private copies forumd loads leave nothing behind, even when forumd is killed.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use t::Util;

my $tplugins = build_dir() . '/t-plugins';

sub place_bytes {    # renames a file holding $bytes into place as NAME.so, as a deploy would
    my ($server, $bytes, $name) = @_;
    my $tmp = "$server->{plugin_dir}/.$name.so.new";
    open my $fh, '>', $tmp or die $!;
    binmode $fh;
    print $fh $bytes;
    close $fh or die $!;
    rename $tmp, "$server->{plugin_dir}/$name.so" or die "rename: $!";
}

sub alive {    # reaps forumd if it died, so that the guard reports how
    my $server = shift;
    return 0 unless $server->{pid};
    return 1 if waitpid($server->{pid}, WNOHANG) == 0;
    $server->{exit} = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    delete $server->{pid};
    return 0;
}

sub count_refusals { scalar(() = $_[0]->log =~ /plugin probe: refused /g) }

sub wait_refusals {
    my ($server, $n) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        return 1 if count_refusals($server) >= $n;
        return 0 unless alive($server);
        sleep 0.05;
    }
    return 0;
}

sub generation {
    my $st = curl_json('curl -s', 'GET', $_[0]->url . '/_status')->{json};
    return (map { $_->{generation} } grep { $_->{name} eq 'probe' } @{ $st->{plugins} // [] })[0] // -1;
}

my $good = slurp("$tplugins/probe_v2.so");
my $size = length $good;
my $page = 4096;
# where the loadable segments end: past that a file holds only what dlopen does not map (debug
# information, section headers), so the truncations that can fault are those before it
my ($phoff, $phentsize, $phnum) = (unpack('Q<', substr($good, 32, 8)), unpack('v', substr($good, 54, 2)), unpack('v', substr($good, 56, 2)));
my $load_end = 0;
for my $i (0 .. $phnum - 1) {
    my $ph = substr($good, $phoff + $i * $phentsize, $phentsize);
    my ($type, $offset, $filesz) = (unpack('V', $ph), unpack('Q<', substr($ph, 8, 8)), unpack('Q<', substr($ph, 32, 8)));
    $load_end = $offset + $filesz if $type == 1 && $offset + $filesz > $load_end;
}
die "no PT_LOAD in probe_v2.so" unless $load_end > $page;
# e_phoff is the 64-bit little-endian field at offset 32 of the ELF64 header
(my $bad_phoff = $good) =~ s/\A(.{32}).{8}/$1 . pack('Q<', $size + 4096)/se;

my @cases = (
    ['the ELF header only', substr($good, 0, 64), qr/program header table .* past the end of the file/],
    ['half of what is loaded', substr($good, 0, int($load_end / 2)), qr/segment .* past the end of the file/],
    ['all but the last page of what is loaded', substr($good, 0, int(($load_end - 1) / $page) * $page),
     qr/segment .* past the end of the file/],
    ['all but the last page', substr($good, 0, int(($size - 1) / $page) * $page), qr/section header table .* past the end of the file/],
    ['a program header table offset past the end', $bad_phoff, qr/program header table .* past the end of the file/],
    ['a few bytes that are not ELF', "not an ELF file\n", qr/file too short/],
    ['no ELF magic', "\0" x 4096, qr/invalid ELF header/],
);

subtest 'a truncated or malformed shared object is refused before dlopen; the old generation serves' => sub {
    my $server = spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$tplugins/probe.so" }, watch => 1);
    is generation($server), 1, 'generation 1 at start';
    my $refusals = 0;
    for my $case (@cases) {
        my ($name, $bytes, $re) = @$case;
        place_bytes($server, $bytes, 'probe');
        ok wait_refusals($server, ++$refusals), "$name: refused";
        my @lines = grep { /plugin probe: refused / } split /\n/, $server->log;
        like $lines[-1] // '', qr/plugin probe: refused .*probe\.so: not a loadable ELF file: .*$re/, '  with one line that says why';
        ok alive($server), '  forumd lives';
        is generation($server), 1, '  generation 1 keeps serving';
        is curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami')->{json}{version}, '1.0.0', '  and answering';
    }
    place_bytes($server, $good, 'probe');
    my $deadline = time + 10;
    sleep 0.05 while generation($server) < 2 && time < $deadline && alive($server);
    is generation($server), 2, 'the whole file, renamed into place, is swapped in';
    is curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami')->{json}{version}, '2.0.0', 'and answers';
    is $server->stop, 0, 'forumd exits 0';
};

subtest 'forumd leaves nothing in TMPDIR, not even when it is killed' => sub {
    my $tmp = tempdir(CLEANUP => 1);
    my $server = do {
        local $ENV{TMPDIR} = $tmp;
        spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$tplugins/probe.so" }, watch => 1);
    };
    # the test's own folder for the server (configuration, database) is in $tmp too: leave it out
    (my $own = $server->{dir}) =~ s{.*/}{};
    my $theirs = sub { opendir my $dh, $tmp or die $!; [sort grep { !/^\.\.?$/ && $_ ne $own } readdir $dh] };
    is_deeply $theirs->(), [], 'nothing while it runs';
    place_bytes($server, $good, 'probe');
    my $deadline = time + 10;
    sleep 0.05 while generation($server) < 2 && time < $deadline;
    is generation($server), 2, 'a swap loads a fresh copy (generation 2)';
    is curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami')->{json}{version}, '2.0.0', 'of the new code';
    is_deeply $theirs->(), [], 'nothing after a swap';
    kill 'KILL', $server->pid;
    waitpid $server->pid, 0;
    delete $server->{pid};
    is_deeply $theirs->(), [], 'nothing after kill -9';
};

subtest 'without /proc, forumd says so instead of loading plugins some other way' => sub {
    plan skip_all => 'needs a private mount namespace (unshare -m, as root)'
        unless system('unshare -m --propagation private true >/dev/null 2>&1') == 0;
    my $server = spawn_forumd(plugins => [qw(probe)], plugin_files => { probe => "$tplugins/probe.so" });
    my $conf = $server->{conf};
    $server->stop;
    my $bin = forumd_bin();
    my $out = `unshare -m --propagation private sh -c 'umount -l /proc && exec $bin -t -c $conf' 2>&1`;
    is $? >> 8, 1, 'forumd -t exits 1';
    like $out, qr/plugin probe would be refused: .*cannot reach its copy as \/proc\/self\/fd\/\d+ .*\/proc, which must be mounted/,
        'and names /proc';
};

done_testing;
