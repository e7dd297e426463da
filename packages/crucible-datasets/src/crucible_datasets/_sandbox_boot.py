"""The program every sandbox backend starts: `python -I -S -B -c WRAPPER <mode>`.

It is passed on the command line (it is public; nothing in it is secret) and reads everything
else, the per-run token included, from standard input (a `marshal`-ed dict from the trusted
supervisor), which it then replaces with `/dev/null`. It writes one verdict line,
`<token> <ok> <reason> <hex type> <hex message>`, to standard output; the supervisor outside
the sandbox counts a pass only when that line carries this run's token, says ok, and the
sandbox exited with status 0. It imports only C modules (no `json`, `re`, `signal`: their
import costs more than the rest of a run).

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

WRAPPER = r"""
import os, sys
def _main():
    import marshal, resource
    mode = sys.argv[1]
    _write, _read, _exit = os.write, os.read, os._exit
    SIGKILL, SIGXCPU, SIGXFSZ = 9, 24, 25
    SIGNALS = {6: "SIGABRT", 7: "SIGBUS", 9: "SIGKILL", 11: "SIGSEGV", 24: "SIGXCPU", 25: "SIGXFSZ"}

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

    # -- values crossing the pipe: plain data only, a small binary format decoded by hand --
    def enc(v, out, depth=0):
        if depth > 100:
            raise ValueError("nested too deeply")
        t = type(v)
        if v is None:
            out.append(b"n")
        elif t is bool:
            out.append(b"T" if v else b"F")
        elif t is int or t is float or t is str or t is bytes:
            if t is bytes:
                data, tag = v, b"y"
            elif t is str:
                data, tag = v.encode("utf-8", "surrogatepass"), b"s"
            elif t is int:
                data, tag = hex(v).encode(), b"i"
            else:
                data, tag = v.hex().encode(), b"f"
            out.append(tag + len(data).to_bytes(4, "big") + data)
        elif t is complex:
            out.append(b"c")
            enc(v.real, out)
            enc(v.imag, out)
        elif t is list or t is tuple or t is set or t is frozenset:
            tag = b"l" if t is list else b"t" if t is tuple else b"S" if t is set else b"Z"
            out.append(tag + len(v).to_bytes(4, "big"))
            for x in v:
                enc(x, out, depth + 1)
        elif t is dict:
            out.append(b"d" + len(v).to_bytes(4, "big"))
            for k, x in v.items():
                enc(k, out, depth + 1)
                enc(x, out, depth + 1)
        elif getattr(t, "__module__", "") == "numpy" and getattr(v, "ndim", 1) == 0 and hasattr(v, "item"):
            enc(v.item(), out, depth)
        else:
            raise TypeError("a value of type " + str(getattr(t, "__module__", "")) + "."
                            + str(t.__name__) + " cannot cross the sandbox")

    def dumps(v):
        out = []
        enc(v, out)
        return b"".join(out)

    def loads(data):
        pos = 0

        def item(depth):
            nonlocal pos
            if depth > 100:
                raise ValueError("nested too deeply")
            tag = data[pos:pos + 1]
            pos += 1
            if tag == b"n":
                return None
            if tag == b"T":
                return True
            if tag == b"F":
                return False
            if tag == b"c":
                real = item(depth + 1)
                imag = item(depth + 1)
                if type(real) is not float or type(imag) is not float:
                    raise ValueError("malformed complex")
                return complex(real, imag)
            if tag in (b"i", b"f", b"s", b"y"):
                n = int.from_bytes(data[pos:pos + 4], "big")
                raw = data[pos + 4:pos + 4 + n]
                if len(raw) != n:
                    raise ValueError("truncated value")
                pos += 4 + n
                if tag == b"y":
                    return bytes(raw)
                text = raw.decode("utf-8", "surrogatepass")
                if tag == b"s":
                    return text
                return int(text, 16) if tag == b"i" else float.fromhex(text)
            if tag in (b"l", b"t", b"S", b"Z", b"d"):
                n = int.from_bytes(data[pos:pos + 4], "big")
                pos += 4
                if n > len(data):
                    raise ValueError("malformed length")
                if tag == b"d":
                    out = {}
                    for _ in range(n):
                        k = item(depth + 1)
                        out[k] = item(depth + 1)
                    return out
                values = [item(depth + 1) for _ in range(n)]
                if tag == b"l":
                    return values
                return tuple(values) if tag == b"t" else set(values) if tag == b"S" else frozenset(values)
            raise ValueError("malformed value from the program process")

        v = item(0)
        if pos != len(data):
            raise ValueError("trailing data from the program process")
        return v

    def send(fd, obj):
        data = dumps(obj)
        data = len(data).to_bytes(4, "big") + data
        while data:
            data = data[_write(fd, data):]

    def recv_raw(fd):
        n = int.from_bytes(read_exact(fd, 4), "big")
        if n > 1 << 26:
            raise ValueError("a message from the program process is too large")
        return read_exact(fd, n)

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
            lines = ["Traceback (most recent call last):"]
            tb = exc.__traceback__
            while tb is not None:
                code = tb.tb_frame.f_code
                if code.co_filename != "<string>":
                    lines.append('  File "' + code.co_filename + '", line ' + str(tb.tb_lineno)
                                 + ", in " + code.co_name)
                tb = tb.tb_next
            try:
                message = str(exc)
            except BaseException:
                message = "<unprintable>"
            lines.append(type(exc).__name__ + (": " + message if message else ""))
            _write(2, ("\n".join(lines)[-8000:] + "\n").encode("utf-8", "replace"))
        except BaseException:
            pass

    def verdict(token, result):
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except BaseException:
                pass
        fields = [token, "1" if result.get("ok") is True else "0",
                  str(result.get("reason", "passed")),
                  str(result.get("type", "")).encode("utf-8", "replace").hex(),
                  str(result.get("message", ""))[:500].encode("utf-8", "replace").hex()]
        line = (" ".join(fields) + "\n").encode()
        while line:
            line = line[_write(1, line):]

    def namespace():
        import builtins
        return {"__name__": "__sandbox__", "__builtins__": builtins}

    if mode == "program":
        me = os.getpid()
        data = marshal.loads(read_all(0))
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
            init = loads(recv_raw(req_r))
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
                args, kwargs = loads(recv_raw(req_r))
                try:
                    value = fn(*args, **kwargs)
                    reply = b"v" + dumps(value)
                except BaseException as exc:
                    try:
                        message = str(exc)[:500]
                    except BaseException:
                        message = ""
                    t = type(exc)
                    builtin = getattr(t, "__module__", "") == "builtins"
                    reply = b"r" + dumps([str(t.__name__), builtin, message])
                try:
                    sys.stdout.flush()
                except BaseException:
                    pass
                reply = len(reply).to_bytes(4, "big") + reply
                while reply:
                    reply = reply[_write(rep_w, reply):]
        finally:
            _exit(1)

    os.close(req_r)
    os.close(rep_w)
    data = marshal.loads(read_all(0))
    os.close(0)
    token = data["token"]
    limits(data["limits"])
    paths(data)

    import builtins

    class RemoteError(Exception):
        pass  # an exception the program raised whose type is not a built-in one

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
            reason = {SIGXCPU: "timeout", SIGXFSZ: "output_limit"}.get(sig, "crash")
            return {"ok": False, "reason": reason, "type": "signal",
                    "message": "the program was killed by "
                           + SIGNALS.get(sig, "signal " + str(sig))}
        code = os.WEXITSTATUS(status)
        return {"ok": False, "reason": "forged_exit" if code == 0 else "exit", "type": "exit",
                "message": "the program ended itself with status " + str(code) + " during the tests"}

    class ProgramGone(BaseException):
        pass

    def candidate(*args, **kwargs):
        send(req_w, [list(args), dict(kwargs)])
        try:
            reply = recv_raw(rep_r)
        except (EOFError, OSError):
            raise ProgramGone()
        if reply[:1] == b"v":
            return loads(reply[1:])
        if reply[:1] == b"r":
            info = loads(reply[1:])
            if type(info) is list and len(info) == 3:
                raise_remote(str(info[0]), info[1] is True, str(info[2]))
        raise ValueError("malformed reply from the program process")

    try:
        send(req_w, {"program": data["prompt"] + data["completion"], "limits": data["limits"],
                     "site": data.get("site"), "entry_point": data["entry_point"]})
        first = loads(recv_raw(rep_r))
    except (EOFError, OSError):
        first = None
    except Exception:  # bytes the program wrote on its pipe instead of the protocol
        first = ["error", {"reason": "exception", "type": "ProtocolError",
                           "message": "malformed message from the program process"}]
    if first is None:
        result = program_gone()
    elif type(first) is not list or not first or first[0] != "ready":
        info = first[1] if type(first) is list and len(first) > 1 and type(first[1]) is dict else {}
        result = {"ok": False, "reason": str(info.get("reason", "exception")),
                  "type": str(info.get("type", "")), "message": str(info.get("message", ""))[:500]}
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
        os.kill(pid, SIGKILL)
    except OSError:
        pass
    verdict(token, result)
    _exit(0)

_main()
"""
