# The client as the server sends it (tools/build-public, `make build`): index.html revalidated on every
# visit (Cache-Control: no-cache, ETag, 304), everything it links under /assets/HASH/ cached for a year
# (immutable), and each file sent precompressed by Accept-Encoding (br, then gzip) with bytes that
# decompress to the source in public/.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/..";
use Test::More;
use File::Temp qw(tempdir);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use t::Util;

my $built = build_dir() . '/public';
ok -f "$built/index.html", 'the build wrote the client into the build folder' or BAIL_OUT("no $built/index.html: run make build");

my $server = spawn_forumd(public_dir => $built);
my $tmp = tempdir(CLEANUP => 1);
my $have_brotli = system('command -v brotli >/dev/null 2>&1') == 0;

sub source { my $rel = shift; open my $fh, '<:raw', root_dir() . "/public/$rel" or die "$rel: $!"; local $/; scalar <$fh> }

sub unbrotli {
    my $bytes = shift;
    open my $fh, '>:raw', "$tmp/in.br" or die $!;
    print $fh $bytes;
    close $fh;
    return scalar `brotli -d -c $tmp/in.br`;
}

sub gunzipped { my ($in, $out) = (shift, undef); gunzip(\$in => \$out) or return "gunzip: $GunzipError"; $out }

run_with_curl($server, sub {
    my ($proto, $base, $curl) = @_;

    my $index = curl_json($curl, 'GET', "$base/", headers => ['Accept-Encoding: gzip']);
    is $index->{status}, 200, 'GET / answers';
    is $index->{headers}{'content-encoding'}, 'gzip', 'index.html comes gzipped when gzip is accepted';
    like $index->{headers}{vary} // '', qr/accept-encoding/i, 'with Vary: Accept-Encoding';
    is $index->{headers}{'cache-control'}, 'no-cache', 'index.html is revalidated on every visit';
    my $html = gunzipped($index->{body});
    my $plain = curl_json($curl, 'GET', "$base/");
    is $plain->{headers}{'content-encoding'}, undef, 'without Accept-Encoding it comes as is';
    is $html, $plain->{body}, 'and the gzip decompresses to those bytes';

    my $etag = $plain->{headers}{etag};
    ok $etag, 'index.html has an ETag';
    my $again = curl_json($curl, 'GET', "$base/", headers => ["If-None-Match: $etag"]);
    is $again->{status}, 304, 'a repeat visit revalidates index.html: 304';
    is $again->{headers}{'cache-control'}, 'no-cache', 'still no-cache';

    my @links = $html =~ m{(?:href|src)="(/assets/[0-9a-f]{16}/[^"]+)"}g;
    my %linked = map { m{^/assets/[0-9a-f]{16}/(.+)$} ? ($1 => $_) : () } @links;
    is_deeply [sort keys %linked], [sort qw(app.js favicon.svg style.css css/feed.css css/chat.css css/rooms.css)],
        'index.html links the script, the styles and the icon under one hashed folder';
    my ($folder) = $links[0] =~ m{^(/assets/[0-9a-f]{16})/};

    # the linked files, and modules only imported (relative imports stay in the hashed folder)
    for my $rel (sort(keys %linked), 'js/socket.js', 'js/shell.js') {
        my $url = "$base$folder/$rel";
        my $src = source($rel);
        my $raw = curl_json($curl, 'GET', $url);
        is $raw->{status}, 200, "$rel: 200";
        is $raw->{body}, $src, "$rel: the bytes of public/$rel";
        is $raw->{headers}{'cache-control'}, 'public, max-age=31536000, immutable', "$rel: cached for a year, immutable";
        like $raw->{headers}{'content-type'}, qr{^(text/javascript|application/javascript|text/css|image/svg\+xml)}, "$rel: its type";
        my $gz = curl_json($curl, 'GET', $url, headers => ['Accept-Encoding: gzip']);
        is $gz->{headers}{'content-encoding'}, 'gzip', "$rel: gzip when accepted";
        ok length($gz->{body}) < length($src), "$rel: smaller gzipped";
        is gunzipped($gz->{body}), $src, "$rel: the gzip decompresses to the source";
        is $gz->{headers}{'cache-control'}, 'public, max-age=31536000, immutable', "$rel: gzipped, still immutable";
        SKIP: {
            skip 'no brotli tool', 3 unless $have_brotli;
            my $br = curl_json($curl, 'GET', $url, headers => ['Accept-Encoding: gzip, deflate, br']);
            is $br->{headers}{'content-encoding'}, 'br', "$rel: brotli preferred when accepted";
            is unbrotli($br->{body}), $src, "$rel: the brotli decompresses to the source";
            like $br->{headers}{vary} // '', qr/accept-encoding/i, "$rel: Vary: Accept-Encoding";
        }
    }

    my $missing = curl_json($curl, 'GET', "$base$folder/nothing-here.js");
    is $missing->{status}, 404, 'a missing asset is 404';
    isnt $missing->{headers}{'cache-control'} // '', 'public, max-age=31536000, immutable', 'and is not cached for a year';
});

is $server->stop, 0, 'forumd stops cleanly';
done_testing;
