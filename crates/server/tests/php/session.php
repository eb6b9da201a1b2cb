<?php
// session.php: a scriptable PHP session client for sessiond's integration tests.
//
// The Rust tests (crates/server/tests/it/php_memcached.rs) run this with the stock PHP CLI and
// `-d session.save_handler=memcached ...`, so every byte on the wire comes from the real
// php-memcached extension. The command line is a list of steps executed in order:
//
//   id=<sid>            session_id(<sid>) (before `start`)
//   start               session_start(); prints `started <0|1> <id>`, then `var <key> <hex>`
//                       for every session variable read from the store, then `vars-end`
//   set:<key>=<hex>     $_SESSION[<key>] = hex2bin(<hex>)
//   int:<key>=<n>       $_SESSION[<key>] = (int) <n> (a user id as applications store it)
//   fill:<key>=<n>      $_SESSION[<key>] = n bytes, byte i = (i * 31 + 7) % 256
//   regenerate          session_regenerate_id(true); prints `regenerated <0|1> <new id>`
//   destroy             session_destroy(); prints `destroyed <0|1>`
//   close               session_write_close(); prints `closed <0|1>`
//   say:<word>          prints <word>
//   wait                prints `waiting`, then blocks until a line arrives on stdin
//   sleep:<ms>          usleep
//   time:<label>        prints `time <label> <microtime(true)>`
//
// Every notice or warning PHP raises is printed as `warning <hex message>` (the tests treat
// any as a failure unless they expect it), and the last line is `done`. Output goes through
// fwrite(STDOUT) rather than echo: echo would mark the headers as sent, and session_start()
// then refuses to run after a `say:` step.

function out(string $line): void
{
    fwrite(STDOUT, $line . "\n");
    fflush(STDOUT);
}

set_error_handler(function (int $errno, string $errstr, string $file, int $line): bool {
    out('warning ' . bin2hex("[$errno] $errstr (line $line)"));
    return true;
});

foreach (array_slice($argv, 1) as $step) {
    if (str_starts_with($step, 'id=')) {
        session_id(substr($step, 3));
    } elseif ($step === 'start') {
        $ok = session_start();
        out('started ' . ($ok ? 1 : 0) . ' ' . session_id());
        foreach ($_SESSION ?? [] as $key => $value) {
            out("var $key " . bin2hex(is_string($value) ? $value : serialize($value)));
        }
        out('vars-end');
    } elseif (str_starts_with($step, 'set:')) {
        [$key, $value] = explode('=', substr($step, 4), 2);
        $_SESSION[$key] = hex2bin($value);
    } elseif (str_starts_with($step, 'int:')) {
        [$key, $value] = explode('=', substr($step, 4), 2);
        $_SESSION[$key] = (int) $value;
    } elseif (str_starts_with($step, 'fill:')) {
        [$key, $n] = explode('=', substr($step, 5), 2);
        $bytes = '';
        for ($i = 0; $i < (int) $n; $i++) {
            $bytes .= chr(($i * 31 + 7) % 256);
        }
        $_SESSION[$key] = $bytes;
    } elseif ($step === 'regenerate') {
        $ok = session_regenerate_id(true);
        out('regenerated ' . ($ok ? 1 : 0) . ' ' . session_id());
    } elseif ($step === 'destroy') {
        out('destroyed ' . (session_destroy() ? 1 : 0));
    } elseif ($step === 'close') {
        out('closed ' . (session_write_close() ? 1 : 0));
    } elseif (str_starts_with($step, 'say:')) {
        out(substr($step, 4));
    } elseif ($step === 'wait') {
        out('waiting');
        fgets(STDIN);
    } elseif (str_starts_with($step, 'sleep:')) {
        usleep(1000 * (int) substr($step, 6));
    } elseif (str_starts_with($step, 'time:')) {
        out('time ' . substr($step, 5) . ' ' . sprintf('%.6f', microtime(true)));
    } else {
        out('warning ' . bin2hex("unknown step $step"));
        exit(2);
    }
}
out('done');
