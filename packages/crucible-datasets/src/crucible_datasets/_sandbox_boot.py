"""The program every sandbox backend starts: `python -I -S -B -c WRAPPER <mode>`.

It is passed on the command line (it is public; nothing in it is secret) and reads everything
else, the per-run token included, from standard input, which it then replaces with `/dev/null`.
It writes one verdict line, `<token> <json>`, to standard output; the supervisor outside the
sandbox counts a pass only when that line carries this run's token, says `"ok": true`, and the
sandbox exited with status 0.

Two modes (see `_sandbox.py` for the threat model):

- `program`: one process runs the whole program and writes the verdict when `exec` returns. An
  early exit of any kind (`SystemExit`, `os._exit`, a signal, an `atexit` hook, an exception
  hook) never reaches that point, so it cannot pass.
- `check`: a trusted *judge* process (this one, never running model-written code) forks the
  *program* process *before* it reads the token or the tests, so neither ever exists in the
  program's memory. The program process runs prompt + completion and answers calls to the entry
  point over a pipe; the judge runs the prompt's helpers and the tests with `candidate` standing
  for that remote function, and compares plain values (ints, strings, lists, ...) decoded from
  the pipe without evaluating anything. The judge makes itself non-dumpable, so the program
  cannot read its memory or file descriptors through `/proc` or ptrace. Only the judge can write
  the verdict, and only after `check()` has returned.
"""

from __future__ import annotations

WRAPPER = r'''
import os, sys
def _main():
    import json, resource, signal
    mode = sys.argv[1]
    _write, _read, _exit = os.write, os.read, os._exit

    def read_all(fd):
        chunks = []
        while True:
            b = _read(fd, 1 << 16)
            if not b:
                return b"".join(chunks)
            chunks.append(b)

    def read_exact(fd, n):
        chunks, got = [], 0
        while got < n:
            b = _read(fd, min(n - got, 1 << 20))
            if not b:
                raise EOFError("the program process closed its pipe")
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def send(fd, obj):
        data = json.dumps(obj).encode()
        data = len(data).to_bytes(4, "big") + data
        while data:
            data = data[_write(fd, data):]

    def recv(fd, limit=1 << 26):
        n = int.from_bytes(read_exact(fd, 4), "big")
        if n > limit:
            raise ValueError("a message from the program process is too large")
        return json.loads(read_exact(fd, n))

    def null_stdin():
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)

    def limits(cfg):
        for name, value in (("RLIMIT_AS", cfg["memory"]), ("RLIMIT_CPU", cfg["cpu"]),
                            ("RLIMIT_FSIZE", cfg["fsize"]), ("RLIMIT_NOFILE", cfg["nofile"]),
                            ("RLIMIT_NPROC", cfg["nproc"]), ("RLIMIT_CORE", 0)):
            res = getattr(resource, name, None)
            if res is None or value is None:
                continue
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass

    def paths(cfg):
        for p in cfg.get("site") or ():
            if p not in sys.path:
                sys.path.append(p)

    def describe(exc):
        if isinstance(exc, AssertionError):
            reason = "assertion"
        elif isinstance(exc, MemoryError):
            reason = "memory"
        elif isinstance(exc, SyntaxError):
            reason = "syntax"
        elif isinstance(exc, SystemExit):
            reason = "forged_exit" if exc.code in (0, None) else "exit"
        else:
            reason = "exception"
        try:
            message = str(exc)[:500]
        except BaseException:
            message = "<unprintable>"
        return {"ok": False, "reason": reason, "type": type(exc).__name__, "message": message}

    def traceback_to_stderr(exc):
        try:
            import traceback
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            _write(2, text[-8000:].encode("utf-8", "replace"))
        except BaseException:
            pass

    def verdict(token, result):
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except BaseException:
                pass
        line = (token + " " + json.dumps(result) + "\n").encode()
        while line:
            line = line[_write(1, line):]

    def namespace():
        import builtins
        return {"__name__": "__sandbox__", "__builtins__": builtins}

    # -- values crossing the pipe: plain data only, tagged JSON, decoded without evaluation --
    def enc(v, depth=0):
        if depth > 100:
            raise ValueError("nested too deeply")
        t = type(v)
        if v is None:
            return ["n"]
        if t is bool:
            return ["b", v]
        if t is int:
            return ["i", hex(v)]
        if t is float:
            return ["f", v.hex()]
        if t is complex:
            return ["c", v.real.hex(), v.imag.hex()]
        if t is str:
            return ["s", v]
        if t is bytes:
            return ["y", v.hex()]
        tags = {list: "l", tuple: "t", set: "S", frozenset: "F"}
        if t in tags:
            return [tags[t], [enc(x, depth + 1) for x in v]]
        if t is dict:
            return ["d", [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]]
        mod = getattr(t, "__module__", "")
        if mod == "numpy" and hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            return enc(v.item(), depth)
        raise TypeError("a value of type " + mod + "." + t.__name__ + " cannot cross the sandbox")

    def dec(x, depth=0):
        if depth > 100 or type(x) is not list or not x or type(x[0]) is not str:
            raise ValueError("malformed value from the program process")
        tag = x[0]
        if tag == "n":
            return None
        if tag == "b" and type(x[1]) is bool:
            return x[1]
        if tag == "i":
            return int(x[1], 16)
        if tag == "f":
            return float.fromhex(x[1])
        if tag == "c":
            return complex(float.fromhex(x[1]), float.fromhex(x[2]))
        if tag == "s" and type(x[1]) is str:
            return x[1]
        if tag == "y":
            return bytes.fromhex(x[1])
        if tag in ("l", "t", "S", "F") and type(x[1]) is list:
            items = [dec(i, depth + 1) for i in x[1]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and type(x[1]) is list:
            return {dec(k, depth + 1): dec(v, depth + 1) for k, v in x[1]}
        raise ValueError("malformed value from the program process")

    if mode == "program":
        me = os.getpid()
        data = json.loads(read_all(0))
        null_stdin()
        token = data["token"]
        limits(data["limits"])
        paths(data)
        try:
            code = compile(data["program"], "<program>", "exec")
            del data
            exec(code, namespace())
        except BaseException as exc:
            traceback_to_stderr(exc)
            result = describe(exc)
        else:
            result = {"ok": True}
        if os.getpid() != me:  # a copy the program forked: only the original may answer
            _exit(1)
        verdict(token, result)
        _exit(0)

    # -- check mode: fork the program process before anything secret is read --
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    except BaseException:
        pass
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            null_stdin()
            keep = {0, 1, 2, req_r, rep_w}
            for fd in range(3, 1024):
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            init = recv(req_r)
            limits(init["limits"])
            paths(init)
            g = namespace()
            try:
                exec(compile(init["program"], "<program>", "exec"), g)
                fn = g[init["entry_point"]]
            except BaseException as exc:
                traceback_to_stderr(exc)
                send(rep_w, ["error", describe(exc)])
                _exit(1)
            send(rep_w, ["ready"])
            while True:
                args, kwargs = recv(req_r)
                try:
                    value = fn(*dec(args), **dec(kwargs))
                    reply = ["value", enc(value)]
                except BaseException as exc:
                    try:
                        message = str(exc)[:500]
                    except BaseException:
                        message = ""
                    t = type(exc)
                    reply = ["raise", t.__name__, getattr(t, "__module__", "") == "builtins", message]
                try:
                    sys.stdout.flush()
                except BaseException:
                    pass
                send(rep_w, reply)
        finally:
            _exit(1)

    os.close(req_r)
    os.close(rep_w)
    data = json.loads(read_all(0))
    os.close(0)
    token = data["token"]
    limits(data["limits"])
    paths(data)

    import builtins

    class RemoteError(Exception):
        """An exception the program raised (its type is not a built-in one)."""

    def raise_remote(name, builtin, message):
        cls = getattr(builtins, name, None) if builtin else None
        if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
            try:
                err = cls(message)
            except BaseException:
                err = RemoteError(name + ": " + message)
        else:
            err = RemoteError(name + ": " + message)
        err.remote_type = name
        raise err

    def program_gone():
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return {"ok": False, "reason": "exit", "type": "exit", "message": "the program process ended"}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            reason = {signal.SIGXCPU: "timeout", signal.SIGXFSZ: "output_limit"}.get(sig, "crash")
            return {"ok": False, "reason": reason, "type": "signal",
                    "message": "the program was killed by signal " + signal.Signals(sig).name}
        code = os.WEXITSTATUS(status)
        return {"ok": False, "reason": "forged_exit" if code == 0 else "exit", "type": "exit",
                "message": "the program ended itself with status " + str(code) + " during the tests"}

    class ProgramGone(BaseException):
        pass

    def candidate(*args, **kwargs):
        send(req_w, [enc(list(args)), enc(dict(kwargs))])
        try:
            reply = recv(rep_r)
        except (EOFError, OSError):
            raise ProgramGone()
        if type(reply) is not list or not reply:
            raise ValueError("malformed reply from the program process")
        if reply[0] == "value":
            return dec(reply[1])
        if reply[0] == "raise":
            raise_remote(str(reply[1]), reply[2] is True, str(reply[3]))
        raise ValueError("malformed reply from the program process")

    try:
        send(req_w, {"program": data["prompt"] + data["completion"], "limits": data["limits"],
                     "site": data.get("site"), "entry_point": data["entry_point"]})
        first = recv(rep_r)
    except (EOFError, OSError):
        first = None
    if first is None:
        result = program_gone()
    elif first[0] != "ready":
        result = first[1] if type(first[1]) is dict else {"ok": False, "reason": "exception"}
        result = {"ok": False, "reason": str(result.get("reason")), "type": str(result.get("type")),
                  "message": str(result.get("message"))[:500]}
    else:
        judge = namespace()
        try:
            exec(compile(data["prompt"], "<prompt>", "exec"), judge)
        except BaseException:
            pass
        judge[data["entry_point"]] = candidate
        try:
            exec(compile(data["test"], "<test>", "exec"), judge)
            judge["check"](candidate)
        except ProgramGone:
            result = program_gone()
        except BaseException as exc:
            traceback_to_stderr(exc)
            result = describe(exc)
            name = getattr(exc, "remote_type", None)
            if name is not None:
                result["type"] = name
                if name == "MemoryError":
                    result["reason"] = "memory"
                elif name == "SystemExit":
                    result["reason"] = "forged_exit"
        else:
            result = {"ok": True}
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    verdict(token, result)
    _exit(0)

_main()
'''
