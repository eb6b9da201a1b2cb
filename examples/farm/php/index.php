<?php
// The farm's PHP app, one front controller behind every PHP node: log in, see who you are and
// which node served the page, count in the session, log out. Sessions are PHP's own
// (`session.save_handler` from the node's php.ini): nothing here knows where they are kept.
//
// Every answer is HTML for a browser, or JSON when the request says `Accept: application/json`
// (what the farm's scenario test and benchmark send). Each response names the node in the
// `X-Farm-Node` header too.
//
// A write is acknowledged only once PHP has stored the session: a write the store refused or
// never got (PHP's "Failed to write session data") is answered 503, never "done".
//
// Test hook: `?hold=NAME` on /count, when the pool sets FARM_HOLD_DIR, creates
// `NAME.started` there once the session is read, then waits (at most 20 s) for the file `NAME`
// before writing: the scenario test uses it for "a request in flight during a revocation".

declare(strict_types=1);

$node = getenv('FARM_NODE') ?: 'php';
header('X-Farm-Node: ' . $node);
header('Cache-Control: no-store');

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$wants_json = str_contains($_SERVER['HTTP_ACCEPT'] ?? '', 'application/json');

function answer(int $status, array $body, bool $wants_json, string $node): never
{
    http_response_code($status);
    if ($wants_json) {
        header('Content-Type: application/json');
        echo json_encode($body + ['node' => $node]), "\n";
        exit;
    }
    if ($status === 303) {
        header('Location: /');
        exit;
    }
    header('Content-Type: text/html; charset=utf-8');
    page($body, $node);
    exit;
}

function page(array $body, string $node): void
{
    $h = fn($s) => htmlspecialchars((string) $s, ENT_QUOTES);
    echo "<!doctype html>\n<html><head><meta charset=utf-8><title>farm: ", $h($node),
        "</title></head><body>\n";
    echo '<p>Served by <b id="node">', $h($node), "</b> (PHP)</p>\n";
    if (($body['user'] ?? null) !== null) {
        echo '<p>Logged in as <b id="user">', $h($body['user']), '</b>; count <b id="count">',
            $h($body['count']), "</b></p>\n";
        echo '<form method=post action=/count><button id=count-button>Count</button></form>', "\n";
        echo '<form method=post action=/logout><button id=logout>Log out</button></form>', "\n";
    } else {
        echo "<p id=anonymous>Not logged in.</p>\n";
        echo '<form method=post action=/login><input id=name name=user placeholder="alice">',
            "<button id=login>Log in</button></form>\n";
    }
    if (isset($body['error'])) {
        echo '<p id=error>', $h($body['error']), "</p>\n";
    }
    echo "<p><a id=reload href=/>Reload (another node may answer)</a></p>\n</body></html>\n";
}

// Starts the session only if the browser sent one: an anonymous page view creates nothing.
// Strict mode makes PHP replace an id the store does not know (revoked, expired, made up).
// A store that cannot be reached is a 503, not a logout.
function resume(bool $wants_json, string $node, array $options = []): bool
{
    if (!isset($_COOKIE[session_name()])) {
        return false;
    }
    if (!session_start($options)) {
        // Strict mode could not check the id (the store is down) and made a new one: keep
        // the browser's cookie, or the user would be logged out by the outage itself.
        header_remove('Set-Cookie');
        answer(503, ['error' => 'the session store is unavailable', 'user' => null], $wants_json, $node);
    }
    return true;
}

// session_write_close() returns true even when the save handler failed (PHP only warns), so
// the warning is what tells a stored session from a refused one.
function save(): bool
{
    error_clear_last();
    session_write_close();
    $error = error_get_last();
    return $error === null || !str_contains($error['message'], 'Failed to write session data');
}

function who(): array
{
    return [
        'user' => $_SESSION['user_id'] ?? null,
        'count' => $_SESSION['count'] ?? null,
    ];
}

switch ([$method, $path]) {
    case ['GET', '/']:
    case ['GET', '/whoami']:
        // Read and unlock at once: a page view never holds the session lock.
        resume($wants_json, $node, ['read_and_close' => true]);
        answer(200, who(), $wants_json, $node);

    case ['POST', '/login']:
        $user = (string) ($_POST['user'] ?? '');
        if (!preg_match('/^[a-z0-9_.-]{1,64}$/', $user)) {
            answer(400, ['error' => 'user: 1 to 64 of a-z 0-9 _ . -', 'user' => null], $wants_json, $node);
        }
        if (!session_start()) {
            answer(503, ['error' => 'the session store is unavailable', 'user' => null], $wants_json, $node);
        }
        // A new id at login, and the pre-login one deleted: no session fixation.
        session_regenerate_id(true);
        $_SESSION = ['user_id' => $user, 'count' => 0, 'login_node' => $node];
        if (!save()) {
            answer(503, ['error' => 'the session was not saved', 'user' => null], $wants_json, $node);
        }
        answer($wants_json ? 200 : 303, ['user' => $user, 'count' => 0], $wants_json, $node);

    case ['POST', '/count']:
        if (!resume($wants_json, $node) || !isset($_SESSION['user_id'])) {
            // Unlock, and keep the fresh id strict mode may have made from nothing.
            if (session_status() === PHP_SESSION_ACTIVE) {
                session_abort();
            }
            answer(401, ['error' => 'not logged in', 'user' => null], $wants_json, $node);
        }
        $hold = (string) ($_GET['hold'] ?? '');
        $hold_dir = getenv('FARM_HOLD_DIR');
        if ($hold !== '' && $hold_dir && preg_match('/^[a-z0-9]{1,64}$/', $hold)) {
            touch("$hold_dir/$hold.started");
            for ($i = 0; $i < 2000 && !file_exists("$hold_dir/$hold"); $i++) {
                usleep(10000);
            }
        }
        $_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
        $count = $_SESSION['count'];
        $user = $_SESSION['user_id'];
        if (!save()) {
            answer(503, ['error' => 'the session was not saved', 'user' => null], $wants_json, $node);
        }
        answer($wants_json ? 200 : 303, ['user' => $user, 'count' => $count], $wants_json, $node);

    case ['POST', '/logout']:
        if (resume($wants_json, $node)) {
            session_destroy();
        }
        $params = session_get_cookie_params();
        setcookie(session_name(), '', ['expires' => 1] + array_intersect_key(
            $params,
            ['path' => 1, 'domain' => 1, 'secure' => 1, 'httponly' => 1, 'samesite' => 1]
        ));
        answer($wants_json ? 200 : 303, ['user' => null, 'count' => null], $wants_json, $node);

    default:
        answer(404, ['error' => 'no such page', 'user' => null], $wants_json, $node);
}
