# The rules every API route shares, through the probe test plugin: sessions (401), the origin check
# (403), JSON bodies (415, 400), route parameters and queries, the thread pool, the DAL, logout.
use strict;
use warnings;
use lib '.';
use File::Temp qw(tempdir);
use Test::More;
use t::Util;

my $server = spawn_forumd(plugins => [qw(auth posts comments chat probe)]);

run_with_curl($server, sub {
    my ($proto, $base, $curl) = @_;
    my $jar = tempdir(CLEANUP => 1) . '/jar';
    my $origin = $base;

    my $res = curl_json($curl, 'GET', "$base/api/probe/echo/a/b");
    is $res->{status}, 401, 'a route needs a session';
    is $res->{json}{error}{code}, 'unauthorized', 'with code unauthorized';

    $res = curl_json($curl, 'GET', "$base/api/probe/whoami");
    is $res->{status}, 200, 'a public route needs none';
    is $res->{json}{user}, 0, 'and sees no user';

    $res = curl_json($curl, 'POST', "$base/api/probe/login", json => { user_id => 7 }, cookie_jar => $jar,
                     headers => ["Origin: http://evil.example"]);
    is $res->{status}, 403, 'a cross-origin state change is refused';
    is $res->{json}{error}{code}, 'forbidden', 'with code forbidden';

    $res = curl_json($curl, 'POST', "$base/api/probe/login", json => { user_id => 7 }, cookie_jar => $jar,
                     headers => ["Origin: $origin"]);
    is $res->{status}, 200, 'a same-origin state change passes';
    my $cookie = $res->{headers}{'set-cookie'} // '';
    like $cookie, qr/^sid=[0-9a-f]{64};/, 'the session cookie holds a 256-bit token';
    like $cookie, qr/HttpOnly/, 'HttpOnly';
    like $cookie, qr/SameSite=Lax/, 'SameSite=Lax';
    like $cookie, qr{Path=/(;|$)}, 'Path=/';
    if ($base =~ /^https/) {
        like $cookie, qr/; Secure/, 'Secure on TLS';
    } else {
        unlike $cookie, qr/Secure/, 'not Secure on plain HTTP';
    }

    $res = curl_json($curl, 'GET', "$base/api/probe/echo/first/second%20part?q=a%20b%2Bc&q=ignored", cookie_jar => $jar);
    is $res->{status}, 200, 'the session opens protected routes';
    is_deeply $res->{json}, { a => 'first', b => 'second part', q => 'a b+c', user => 7 },
        'path parameters, the decoded query and the session user reach the plugin';

    $res = curl_json($curl, 'GET', "$base/api/probe/echo/x/y?q=%zz", cookie_jar => $jar);
    is_deeply [$res->{status}, $res->{json}{error}{field}], [400, 'q'], 'a query value that does not decode: 400 naming it, before the plugin';
    $res = curl_json($curl, 'GET', "$base/api/probe/echo/x/y?q=%FE%00", cookie_jar => $jar);
    is_deeply [$res->{status}, $res->{json}{error}{code}], [400, 'bad_request'], 'so does one that is not UTF-8';
    $res = curl_json($curl, 'GET', "$base/api/probe/echo/x%FFy/b", cookie_jar => $jar);
    is $res->{status}, 400, 'a path parameter that is not UTF-8: 400';
    my $head = `$curl -s -I -b '$jar' '$base/api/probe/echo/a/b'`;
    like $head, qr{^HTTP/\S+ 200}, 'HEAD is answered like GET';
    my ($sid) = ($cookie =~ /^(sid=[0-9a-f]+)/);
    $res = curl_json($curl, 'GET', "$base/api/probe/whoami", headers => ['Cookie: sid=' . ('0' x 64) . "; $sid"]);
    is $res->{json}{user}, 7, 'a stale sid before the live one does not hide it';

    $res = curl_json($curl, 'POST', "$base/api/probe/echo", body => '{"a":1}', cookie_jar => $jar,
                     headers => ['Content-Type: text/plain']);
    is $res->{status}, 415, 'a body that is not application/json gets 415';
    is $res->{json}{error}{code}, 'unsupported_media_type', 'with its code';

    $res = curl_json($curl, 'POST', "$base/api/probe/echo", body => '{"a":1}', cookie_jar => $jar);
    is $res->{status}, 415, 'so does a body without Content-Type';

    $res = curl_json($curl, 'POST', "$base/api/probe/echo", json => { text => "h\x{e9}llo \x{1F600}", n => [1, 2.5, undef, \1] },
                     cookie_jar => $jar);
    is $res->{status}, 200, 'a JSON body is accepted';
    is_deeply $res->{json}{body}, { text => "h\x{e9}llo \x{1F600}", n => [1, 2.5, undef, JSON::PP::true] }, 'and reaches the plugin intact';

    $res = curl_json($curl, 'POST', "$base/api/probe/echo", body => '', cookie_jar => $jar,
                     headers => ['Content-Type: application/json; charset=utf-8']);
    is_deeply $res->{json}, { body => undef }, 'an empty body is no body';

    for my $bad ('"\\', '{"a":"\\', '{"a":', '{"a":1} x', '[1,2]', '"text"', '{"a":1 /* c */}', "{\"a\":\"\xff\"}", '[' x 40 . ']' x 40) {
        $res = curl_json($curl, 'POST', "$base/api/probe/echo", body => $bad, cookie_jar => $jar,
                         headers => ['Content-Type: application/json']);
        is $res->{status}, 400, "bad body @{[ length $bad > 20 ? substr($bad, 0, 20) . '...' : $bad ]} gets 400";
        is $res->{json}{error}{code}, 'bad_request', 'with code bad_request';
        ok length($res->{json}{error}{message} // '') > 0, 'and a message';
    }

    $res = curl_json($curl, 'GET', "$base/api/probe/login", cookie_jar => $jar);
    is $res->{status}, 405, 'a route asked with another method gets 405';

    $res = curl_json($curl, 'POST', "$base/api/probe/sleep", json => { ms => 200 }, cookie_jar => $jar);
    is_deeply [$res->{status}, $res->{json}{slept_ms}], [200, 200], 'work on the thread pool answers when it is done';

    $res = curl_json($curl, 'POST', "$base/api/probe/logout", cookie_jar => $jar);
    is $res->{status}, 204, 'logout';
    like $res->{headers}{'set-cookie'} // '', qr/^sid=;.*Max-Age=0/, 'clears the cookie';
    $res = curl_json($curl, 'GET', "$base/api/probe/echo/a/b", headers => ["Cookie: $1"])
        if $cookie =~ /^(sid=[0-9a-f]+)/;
    is $res->{status}, 401, 'and the old token is dead server-side';
});

subtest 'the data access layer: migrations, constraints, row streaming' => sub {
    my $jar = probe_login($server, 3);
    my $base = $server->url;
    my $res = curl_json('curl -s', 'POST', "$base/api/probe/items", json => { name => "it's" }, cookie_jar => $jar);
    is $res->{status}, 201, 'a row is stored through a cached statement';
    is_deeply $res->{json}{items}, [{ id => 1, name => "it's", owner => { id => 3, label => 'user3' } }],
        'and rows stream into JSON, "prefix.key" columns as nested objects';
    $res = curl_json('curl -s', 'POST', "$base/api/probe/items", json => { name => "it's" }, cookie_jar => $jar);
    is $res->{status}, 409, 'a UNIQUE violation reaches the plugin as a constraint result';
    $res = curl_json('curl -s', 'POST', "$base/api/probe/items", json => { name => "Robert'); DROP TABLE probe_items;--" },
                     cookie_jar => $jar);
    is scalar @{ $res->{json}{items} }, 2, 'user text is bound, never spliced into SQL';
};

subtest 'a client that leaves while its work runs does not crash the server' => sub {
    my $jar = probe_login($server, 4);
    system('curl', '-s', '-m', '0.2', '-o', '/dev/null', '-b', $jar, '-H', 'Content-Type: application/json',
           '--data', '{"ms":600}', $server->url . '/api/probe/sleep');
    system('curl', '-s', '--http2', '--insecure', '-m', '0.2', '-o', '/dev/null', '-b', $jar, '-H',
           'Content-Type: application/json', '--data', '{"ms":600}', $server->tls_url . '/api/probe/sleep');
    select undef, undef, undef, 1;
    my $res = curl_json('curl -s', 'GET', $server->url . '/api/probe/whoami');
    is $res->{status}, 200, 'the server still answers';
};

is $server->stop, 0, 'forumd exits 0';
done_testing;
