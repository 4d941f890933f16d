# Replays every fuzz harness of the build under test (FORUMD_BUILD) over its saved corpus
# (t/fuzz/corpus/NAME) and over every input that ever crashed it (t/fuzz/crashes/NAME): the harness
# t/fuzz/NAME.c is built with a replay main as FORUMD_BUILD/t/fuzz/fuzz_NAME. Each must run every file
# (the count it prints is checked against the files there) and exit 0: an input that crashes, breaks an
# invariant or, in the sanitizer build, makes ASan or UBSan report, fails the test.

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname basename);
use File::Spec;
use File::Temp qw(tempfile);
use POSIX ();
use Test::More;

my $root = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)), File::Spec->updir));
my $build = $ENV{FORUMD_BUILD} // 'build';
$build = File::Spec->catdir($root, $build) unless File::Spec->file_name_is_absolute($build);
my $src = "$root/t/fuzz";

my @harnesses = sort grep { $_ ne 'replay' } map { basename($_, '.c') } glob "$src/*.c";
plan tests => 1 + 4 * @harnesses;
ok(scalar @harnesses, 'there are fuzz harnesses in t/fuzz');

# the inputs of a folder as the replay main counts them: regular files whose names do not start with "."
sub inputs_in {
    my ($dir) = @_;
    opendir my $dh, $dir or return 0;
    my $n = grep { !/^\./ && -f "$dir/$_" } readdir $dh;
    closedir $dh;
    return $n;
}

for my $name (@harnesses) {
    my $bin = "$build/t/fuzz/fuzz_$name";
    my @dirs = grep { -d } ("$src/corpus/$name", "$src/crashes/$name");
    my $expected = 0;
    $expected += inputs_in($_) for @dirs;
    ok(inputs_in("$src/corpus/$name") > 0, "$name: has a saved corpus");
    ok(-x $bin, "$name: the replay binary is built") or diag("no $bin: build first (cmake --build $build)");

    my ($err_fh, $err_file) = tempfile(UNLINK => 1);
    my $pid = open(my $out_fh, '-|');
    die "cannot fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>&', $err_fh or die "cannot redirect stderr: $!";
        { exec { $bin } $bin, @dirs };
        print STDERR "cannot run $bin: $!\n";
        POSIX::_exit(127); # not exit: the child must not run the parent's Test::More END block
    }
    my $out = do { local $/; <$out_fh> } // '';
    close $out_fh;
    my $status = $?;
    my $err = do { local $/; open my $fh, '<', $err_file or die "$err_file: $!"; <$fh> } // '';
    my ($ran) = $out =~ /^replayed (\d+) inputs$/m;
    my @err = split /\n/, $err;
    splice @err, 0, @err - 40 if @err > 40; # the last input replayed and what went wrong with it
    is($status, 0, "$name: no input crashes it")
        or diag(($status & 127 ? 'killed by signal ' . ($status & 127) : 'exit code ' . ($status >> 8)) . "\n" . join("\n", @err));
    is($ran // -1, $expected, "$name: replayed all $expected saved inputs");
}
