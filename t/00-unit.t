# Runs every C unit test binary of the build under test (FORUMD_BUILD, default "build", relative to the
# repository root) found in its t/unit/ folder, each as one subtest: one check per cmocka test, plus the
# binary's exit status and a complete plan. A failing binary's whole output is shown as diagnostics.

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempfile);
use POSIX ();
use Test::More;

my $root = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)), File::Spec->updir));
my $build = $ENV{FORUMD_BUILD} // 'build';
$build = File::Spec->catdir($root, $build) unless File::Spec->file_name_is_absolute($build);
my $unit_dir = File::Spec->catdir($build, 't', 'unit');

my @binaries;
if (opendir my $dh, $unit_dir) {
    @binaries = sort grep { -f $_ && -x _ } map { File::Spec->catfile($unit_dir, $_) } grep { !/^\./ } readdir $dh;
    closedir $dh;
}
if (!@binaries) {
    fail("unit test binaries in $unit_dir");
    diag("no executable found in $unit_dir: build first (cmake --build $build)");
    done_testing;
    exit;
}

# Runs one binary with cmocka's TAP output; returns its exit status, stdout and stderr.
sub run_binary {
    my ($bin) = @_;
    my ($err_fh, $err_file) = tempfile(UNLINK => 1);
    my $pid = open(my $out_fh, '-|');
    die "cannot fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>&', $err_fh or die "cannot redirect stderr: $!";
        $ENV{CMOCKA_MESSAGE_OUTPUT} = 'TAP';
        { exec { $bin } $bin };
        print STDERR "cannot run $bin: $!\n";
        POSIX::_exit(127); # not exit: the child must not run the parent's Test::More END block
    }
    my $out = do { local $/; <$out_fh> } // '';
    close $out_fh;
    my $status = $?;
    my $err = do { local $/; open my $fh, '<', $err_file or die "$err_file: $!"; <$fh> } // '';
    return ($status, $out, $err);
}

for my $bin (@binaries) {
    my $name = (File::Spec->splitpath($bin))[2];
    my ($status, $out, $err) = run_binary($bin);
    my $ok = subtest $name => sub {
        my ($planned, @events);
        for my $line (split /\n/, $out) {
            if ($line =~ /^1\.\.(\d+)/) {
                $planned = $1;
            } elsif ($line =~ /^(not )?ok \d+(?:\s+-)?\s*(.*)$/) {
                push @events, {passed => !$1, name => $2};
            } elsif ($line =~ /^#\s?(.*)$/) {
                push @events, {note => $1};
            }
        }
        # a failed test's explanation is in the comments around its "not ok" line: before it (the
        # test's own notes) and after it (cmocka's assertion and location)
        my @results = grep { exists $_->{name} } @events;
        for my $i (0 .. $#events) {
            my $e = $events[$i];
            next unless exists $e->{name};
            next if ok($e->{passed}, $e->{name});
            my @notes;
            for (my $j = $i - 1; $j >= 0 && exists $events[$j]{note}; --$j) { unshift @notes, $events[$j]{note} }
            for (my $j = $i + 1; $j <= $#events && exists $events[$j]{note}; ++$j) { push @notes, $events[$j]{note} }
            diag(join "\n", @notes) if @notes;
        }
        ok(defined $planned, 'printed a plan');
        is(scalar @results, $planned // -1, 'ran every planned test');
        is($status, 0, 'exited with status 0')
            or diag($status & 127 ? 'killed by signal ' . ($status & 127) : 'exit code ' . ($status >> 8));
    };
    diag("--- $name stdout ---\n$out--- $name stderr ---\n$err") unless $ok;
}

done_testing;
