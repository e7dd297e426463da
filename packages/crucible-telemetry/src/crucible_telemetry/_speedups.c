/* crucible_telemetry._speedups: the enrichment of captured events in one pass, in C.
 *
 * Optional: crucible_telemetry works without it (the pure-Python enrichment in _schema.py is the
 * reference, and tests/test_speedups.py checks this module against it value by value). Built by
 * setup.py when a C compiler is present; `crucible_telemetry._columnar.SPEEDUPS` tells which
 * path is in use.
 *
 * scan() walks a flat buffer of captured events (WIDTH values each, see _schema.py) once and
 * fills fixed-width column buffers (bytearrays, wrapped zero-copy by numpy and Arrow), numbering
 * the distinct event names, contexts, models and providers. Each value is converted exactly as
 * _schema.py converts it; a value of a type this file does not know exactly (a float subclass, a
 * numpy scalar, ...) is handed to the Python converter given by the caller, so both paths agree
 * by construction. A batch it cannot handle at all (a mapping that is not a dict, a sequence
 * number that is not an int) makes scan() return None: the caller then uses the Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WIDTH 7

/* Interned key strings, created at module init. */
static PyObject *k_duration, *k_latency_ms, *k_cost, *k_cost_usd, *k_input_tokens,
    *k_prompt_tokens, *k_output_tokens, *k_completion_tokens, *k_model, *k_provider, *k_success;

/* ---------------------------------------------------------------------------------------------
 * Growable code tables: distinct objects numbered in first-seen order, with a one-entry identity
 * cache in front of the dict (consecutive events nearly always share the same object). */

typedef struct {
    PyObject *index;  /* dict: object -> code (PyLong) */
    PyObject *values; /* list: code -> object */
    PyObject *last;   /* borrowed: the object last looked up */
    int32_t last_code;
} Codes;

static int codes_init(Codes *c) {
    c->index = PyDict_New();
    c->values = PyList_New(0);
    c->last = NULL;
    c->last_code = -1;
    return (c->index && c->values) ? 0 : -1;
}

static void codes_clear(Codes *c) {
    Py_CLEAR(c->index);
    Py_CLEAR(c->values);
}

/* The code of `key` (adding it if new), or -2 on error. */
static int32_t codes_get(Codes *c, PyObject *key) {
    if (key == c->last) return c->last_code;
    PyObject *found = PyDict_GetItemWithError(c->index, key);
    int32_t code;
    if (found != NULL) {
        code = (int32_t)PyLong_AsLong(found);
    } else {
        if (PyErr_Occurred()) return -2;
        Py_ssize_t size = PyList_GET_SIZE(c->values);
        if (size >= INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "too many distinct values in one batch");
            return -2;
        }
        PyObject *number = PyLong_FromSsize_t(size);
        if (number == NULL) return -2;
        int failed = PyDict_SetItem(c->index, key, number);
        Py_DECREF(number);
        if (failed || PyList_Append(c->values, key)) return -2;
        code = (int32_t)size;
    }
    /* The table's own object, which it keeps alive: an object freed meanwhile cannot be taken for
     * another one at the same address. Equal objects that are not this one take the dict path. */
    c->last = PyList_GET_ITEM(c->values, code);
    c->last_code = code;
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Value conversions, mirroring _schema.py. */

/* 1: a number stored in *out; 0: null; -1: error. As _schema._float(value, scale). */
static int to_double(PyObject *v, double scale, PyObject *fallback, double *out) {
    if (v == NULL || v == Py_None) return 0;
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v) * scale;
        return 1;
    }
    if (PyLong_CheckExact(v)) {
        double d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
            PyErr_Clear();
            return 0;
        }
        *out = d * scale;
        return 1;
    }
    if (PyBool_Check(v)) return 0;
    PyObject *scale_obj = PyFloat_FromDouble(scale);
    if (scale_obj == NULL) return -1;
    PyObject *got = PyObject_CallFunctionObjArgs(fallback, v, scale_obj, NULL);
    Py_DECREF(scale_obj);
    if (got == NULL) return -1;
    int result = 0;
    if (got != Py_None) {
        *out = PyFloat_AsDouble(got);
        result = (*out == -1.0 && PyErr_Occurred()) ? -1 : 1;
    }
    Py_DECREF(got);
    return result;
}

/* 1: an int64 stored in *out; 0: null; -1: error. As _schema._int(value). */
static int to_int64(PyObject *v, PyObject *fallback, int64_t *out) {
    if (v == NULL || v == Py_None) return 0;
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) return 0;
        if (x == -1 && PyErr_Occurred()) return -1;
        *out = (int64_t)x;
        return 1;
    }
    if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        if (!isfinite(d)) return 0;
        double t = trunc(d);
        if (t < -9223372036854775808.0 || t >= 9223372036854775808.0) return 0;
        *out = (int64_t)t;
        return 1;
    }
    if (PyBool_Check(v)) return 0;
    PyObject *got = PyObject_CallOneArg(fallback, v);
    if (got == NULL) return -1;
    int result = 0;
    if (got != Py_None) {
        long long x = PyLong_AsLongLong(got);
        result = (x == -1 && PyErr_Occurred()) ? -1 : 1;
        *out = (int64_t)x;
    }
    Py_DECREF(got);
    return result;
}

/* An exact int within int64 (capture's own seq and clocks), else -1 with *ok = 0. */
static int64_t own_int(PyObject *v, int *ok) {
    if (!PyLong_CheckExact(v)) {
        *ok = 0;
        return 0;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        *ok = 0;
        return 0;
    }
    return (int64_t)x;
}

/* `d.get(key)` for an exact dict: borrowed, NULL when absent (check PyErr_Occurred). */
static inline PyObject *get(PyObject *d, PyObject *key) {
    return PyDict_GetItemWithError(d, key);
}

/* meas[key] as a number x scale, else meas[alternate] unscaled, as _schema._numbers: 1 (stored
 * in *out), 0 (null, *out = 0) or -1 (error). */
static int read_number(PyObject *meas, PyObject *key, double scale, PyObject *alternate,
                       PyObject *fallback, double *out) {
    int got = 0;
    PyObject *v = get(meas, key);
    if (v == NULL && PyErr_Occurred()) return -1;
    if ((got = to_double(v, scale, fallback, out)) != 0) return got;
    v = get(meas, alternate);
    if (v == NULL && PyErr_Occurred()) return -1;
    if ((got = to_double(v, 1.0, fallback, out)) == 0) *out = 0.0;
    return got;
}

/* A token count, as _schema._counts: meas[key], or meas[alternate] only when meas[key] is missing
 * or None (a count that is present but not a number stays null). */
static int read_count(PyObject *meas, PyObject *key, PyObject *alternate, PyObject *fallback,
                      int64_t *out) {
    PyObject *v = get(meas, key);
    if (v == NULL && PyErr_Occurred()) return -1;
    if (v == NULL || v == Py_None) {
        v = get(meas, alternate);
        if (v == NULL && PyErr_Occurred()) return -1;
    }
    int got = to_int64(v, fallback, out);
    if (got == 0) *out = 0;
    return got;
}

/* The code of meta[key] when it is a str, else -1 (null); -2 on error. */
static int32_t read_code(PyObject *meta, PyObject *key, Codes *codes) {
    PyObject *v = get(meta, key);
    if (v == NULL) return PyErr_Occurred() ? -2 : -1;
    return PyUnicode_CheckExact(v) ? codes_get(codes, v) : -1;
}

/* ---------------------------------------------------------------------------------------------
 * scan() */

typedef struct {
    PyObject *buf; /* bytearray */
    char *data;
} Buffer;

static int buffer_new(Buffer *b, Py_ssize_t size) {
    b->buf = PyByteArray_FromStringAndSize(NULL, size);
    if (b->buf == NULL) return -1;
    b->data = PyByteArray_AS_STRING(b->buf);
    return 0;
}

enum {
    B_SEQ, B_MONO, B_WALL, B_NAME, B_CTX, B_LAT, B_LAT_OK, B_COST, B_COST_OK, B_PROMPT,
    B_PROMPT_OK, B_COMPL, B_COMPL_OK, B_MODEL, B_PROVIDER, B_FLAG, N_BUFFERS
};

PyDoc_STRVAR(scan_doc,
"scan(flat, float_fallback, int_fallback, /)\n--\n\n"
"Enrich a flat buffer of captured events into column buffers in one pass, or None.\n\n"
"Returns (n, buffers, names, context_keys, models, providers, any_flag), where buffers are\n"
"bytearrays: seq, monotonic_ns, timestamp_ns (int64); name and context codes (int32);\n"
"latency_ms and its validity (float64, uint8); cost_usd and validity; prompt_tokens and\n"
"validity (int64, uint8); completion_tokens and validity; model and provider codes (int32,\n"
"-1 for null); success flags (int8: 0, 1, or 2 for none). None when the batch holds a value\n"
"this function cannot take (a mapping that is not a dict, a clock that is not an int).");

static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "scan(flat, float_fallback, int_fallback)");
        return NULL;
    }
    PyObject *flat = args[0], *float_fallback = args[1], *int_fallback = args[2];
    if (!PyList_CheckExact(flat)) Py_RETURN_NONE;
    Py_ssize_t total = PyList_GET_SIZE(flat);
    if (total % WIDTH != 0) {
        PyErr_SetString(PyExc_ValueError, "the flat buffer's length is not a multiple of WIDTH");
        return NULL;
    }
    Py_ssize_t n = total / WIDTH;
    if (n >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "batch too large");
        return NULL;
    }

    static const Py_ssize_t widths[N_BUFFERS] = {
        8, 8, 8, 4, 4, 8, 1, 8, 1, 8, 1, 8, 1, 4, 4, 1,
    };
    Buffer bufs[N_BUFFERS];
    memset(bufs, 0, sizeof bufs);
    Codes names, contexts, models, providers;
    memset(&names, 0, sizeof names);
    memset(&contexts, 0, sizeof contexts);
    memset(&models, 0, sizeof models);
    memset(&providers, 0, sizeof providers);
    PyObject *result = NULL;
    int declined = 0, any_flag = 0;
    PyObject *held_meas = NULL, *held_meta = NULL; /* this row's dicts, kept while converters run */

    for (int k = 0; k < N_BUFFERS; k++)
        if (buffer_new(&bufs[k], n * widths[k])) goto done;
    if (codes_init(&names) || codes_init(&contexts) || codes_init(&models) ||
        codes_init(&providers))
        goto done;

    int64_t *seq = (int64_t *)bufs[B_SEQ].data, *mono = (int64_t *)bufs[B_MONO].data,
            *wall = (int64_t *)bufs[B_WALL].data;
    int32_t *name_codes = (int32_t *)bufs[B_NAME].data, *ctx_codes = (int32_t *)bufs[B_CTX].data,
            *model_codes = (int32_t *)bufs[B_MODEL].data,
            *provider_codes = (int32_t *)bufs[B_PROVIDER].data;
    double *lat = (double *)bufs[B_LAT].data, *cost = (double *)bufs[B_COST].data;
    int64_t *prompt = (int64_t *)bufs[B_PROMPT].data, *compl = (int64_t *)bufs[B_COMPL].data;
    uint8_t *lat_ok = (uint8_t *)bufs[B_LAT_OK].data, *cost_ok = (uint8_t *)bufs[B_COST_OK].data,
            *prompt_ok = (uint8_t *)bufs[B_PROMPT_OK].data,
            *compl_ok = (uint8_t *)bufs[B_COMPL_OK].data;
    int8_t *flags = (int8_t *)bufs[B_FLAG].data;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* A converter given by the caller runs Python code: re-read the list each row. */
        if (PyList_GET_SIZE(flat) != total) {
            PyErr_SetString(PyExc_RuntimeError, "the flat buffer changed during scan()");
            goto done;
        }
        PyObject **row = PySequence_Fast_ITEMS(flat) + i * WIDTH;
        PyObject *name = row[3], *meas = row[4], *meta = row[5], *v;
        int ok = 1;
        seq[i] = own_int(row[0], &ok);
        mono[i] = own_int(row[1], &ok);
        wall[i] = own_int(row[2], &ok);
        if (!ok || !PyTuple_CheckExact(name) || !PyDict_CheckExact(meas) ||
            !PyDict_CheckExact(meta) || !PyLong_CheckExact(row[6])) {
            declined = 1;
            goto done;
        }
        Py_INCREF(meas);
        Py_INCREF(meta);
        held_meas = meas;
        held_meta = meta;
        int32_t code;
        if ((code = codes_get(&names, name)) == -2) goto done;
        name_codes[i] = code;
        if ((code = codes_get(&contexts, row[6])) == -2) goto done;
        ctx_codes[i] = code;

        /* latency: duration (s) x 1000, else latency_ms; cost, else cost_usd */
        int got;
        if ((got = read_number(meas, k_duration, 1000.0, k_latency_ms, float_fallback,
                               &lat[i])) < 0)
            goto done;
        lat_ok[i] = (uint8_t)got;
        if ((got = read_number(meas, k_cost, 1.0, k_cost_usd, float_fallback, &cost[i])) < 0)
            goto done;
        cost_ok[i] = (uint8_t)got;
        if ((got = read_count(meas, k_input_tokens, k_prompt_tokens, int_fallback,
                              &prompt[i])) < 0)
            goto done;
        prompt_ok[i] = (uint8_t)got;
        if ((got = read_count(meas, k_output_tokens, k_completion_tokens, int_fallback,
                              &compl[i])) < 0)
            goto done;
        compl_ok[i] = (uint8_t)got;
        if ((model_codes[i] = read_code(meta, k_model, &models)) == -2) goto done;
        if ((provider_codes[i] = read_code(meta, k_provider, &providers)) == -2) goto done;
        v = get(meta, k_success);
        if (v == NULL) {
            if (PyErr_Occurred()) goto done;
            flags[i] = 2;
        } else {
            any_flag = 1;
            flags[i] = v == Py_True ? 1 : (v == Py_False ? 0 : 2);
        }
        Py_CLEAR(held_meas);
        Py_CLEAR(held_meta);
    }

    PyObject *buffers = PyTuple_New(N_BUFFERS);
    if (buffers == NULL) goto done;
    for (int k = 0; k < N_BUFFERS; k++) {
        PyTuple_SET_ITEM(buffers, k, bufs[k].buf);
        bufs[k].buf = NULL;
    }
    result = Py_BuildValue("(nNOOOOO)", n, buffers, names.values, contexts.values, models.values,
                           providers.values, any_flag ? Py_True : Py_False);

done:
    Py_XDECREF(held_meas);
    Py_XDECREF(held_meta);
    for (int k = 0; k < N_BUFFERS; k++) Py_XDECREF(bufs[k].buf);
    codes_clear(&names);
    codes_clear(&contexts);
    codes_clear(&models);
    codes_clear(&providers);
    if (declined && !PyErr_Occurred()) Py_RETURN_NONE;
    return result;
}

/* ---------------------------------------------------------------------------------------------
 * split_json(): the elements of orjson's JSON text of a list, as Arrow string buffers. */

PyDoc_STRVAR(split_json_doc,
"split_json(raw, n, /)\n--\n\n"
"The n elements of the JSON array text `raw` as (offsets, data): Arrow string buffers\n"
"(int32 offsets, UTF-8 data) holding each element's JSON text; None if raw does not hold\n"
"exactly n elements or exceeds 32-bit offsets. raw must be compact JSON (no whitespace\n"
"between elements), as orjson writes it.");

static PyObject *split_json(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "split_json(raw, n)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE)) return NULL;
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    PyObject *offsets = NULL, *data = NULL, *result = NULL;
    if (n == -1 && PyErr_Occurred()) goto done;
    const unsigned char *raw = view.buf;
    Py_ssize_t len = view.len;
    if (n < 1 || len < 2 || raw[0] != '[' || raw[len - 1] != ']' || len - 2 > INT32_MAX) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    offsets = PyByteArray_FromStringAndSize(NULL, (n + 1) * 4);
    data = PyByteArray_FromStringAndSize(NULL, len - 2);
    if (offsets == NULL || data == NULL) goto done;
    int32_t *off = (int32_t *)PyByteArray_AS_STRING(offsets);
    char *out = PyByteArray_AS_STRING(data);
    Py_ssize_t count = 0, written = 0, depth = 0, start = 1;
    int in_string = 0, too_many = 0;
    off[0] = 0;
    const unsigned char *end = raw + len - 1;
    for (Py_ssize_t i = 1; i < len - 1; i++) {
        unsigned char ch = raw[i];
        if (ch == '"') { /* jump to the closing quote: one not preceded by an odd run of \\ */
            const unsigned char *p = raw + i + 1;
            for (;;) {
                p = memchr(p, '"', (size_t)(end - p));
                if (p == NULL) break;
                const unsigned char *b = p;
                while (b > raw && b[-1] == '\\') b--;
                if ((p - b) % 2 == 0) break;
                p++;
            }
            if (p == NULL) {
                in_string = 1;
                break;
            }
            i = p - raw;
            continue;
        }
        else if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') depth--;
        else if (ch == ',' && depth == 0) {
            if (count + 1 >= n) { /* more elements than expected */
                too_many = 1;
                break;
            }
            memcpy(out + written, raw + start, i - start);
            written += i - start;
            off[++count] = (int32_t)written;
            start = i + 1;
        }
    }
    if (too_many || count + 1 != n || in_string || depth != 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    memcpy(out + written, raw + start, len - 1 - start);
    written += len - 1 - start;
    off[n] = (int32_t)written;
    if (PyByteArray_Resize(data, written)) goto done;
    result = PyTuple_Pack(2, offsets, data);

done:
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    PyBuffer_Release(&view);
    return result;
}

/* ---------------------------------------------------------------------------------------------
 * List builders for the Python-list columns (enrich()). */

PyDoc_STRVAR(take_doc,
"take(codes, values, /)\n--\n\n"
"[values[c] if c >= 0 else None for c in codes], codes an int32 buffer.");

static PyObject *take(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "take(codes, values: list)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE)) return NULL;
    PyObject *values = args[1];
    Py_ssize_t n = view.len / 4, size = PyList_GET_SIZE(values);
    const int32_t *codes = view.buf;
    PyObject *out = PyList_New(n);
    if (out != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t c = codes[i];
            PyObject *item = (c >= 0 && c < size) ? PyList_GET_ITEM(values, c) : Py_None;
            Py_INCREF(item);
            PyList_SET_ITEM(out, i, item);
        }
    }
    PyBuffer_Release(&view);
    return out;
}

PyDoc_STRVAR(numbers_doc,
"numbers(values, valid, kind, /)\n--\n\n"
"A list of Python numbers from a float64 (kind 'd') or int64 (kind 'q') buffer, None where\n"
"the uint8 `valid` buffer holds 0 (valid may be None: every value present).");

static PyObject *numbers(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "numbers(values, valid, kind)");
        return NULL;
    }
    int is_float = PyUnicode_CompareWithASCIIString(args[2], "d") == 0;
    Py_buffer view, mask;
    int has_mask = args[1] != Py_None;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE)) return NULL;
    if (has_mask && PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE)) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t n = view.len / 8;
    PyObject *out = NULL;
    if (has_mask && mask.len < n) {
        PyErr_SetString(PyExc_ValueError, "valid is shorter than values");
        goto done;
    }
    out = PyList_New(n);
    if (out == NULL) goto done;
    const uint8_t *ok = has_mask ? mask.buf : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item;
        if (ok != NULL && !ok[i]) {
            item = Py_None;
            Py_INCREF(item);
        } else if (is_float) {
            item = PyFloat_FromDouble(((const double *)view.buf)[i]);
        } else {
            item = PyLong_FromLongLong(((const int64_t *)view.buf)[i]);
        }
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, item);
    }
done:
    PyBuffer_Release(&view);
    if (has_mask) PyBuffer_Release(&mask);
    return out;
}

/* "-<seq>" and a NUL written to `out` (22 bytes at most); returns the length without the NUL. */
static int dash_digits(int64_t value, char *out) {
    if (value < 0) return snprintf(out, 22, "-%lld", (long long)value);
    char tmp[24];
    int t = 0, len;
    uint64_t x = (uint64_t)value;
    do { /* digits backwards, then moved to the front */
        tmp[t++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    out[0] = '-';
    for (len = 1; t > 0; len++) out[len] = tmp[--t];
    out[len] = '\0';
    return len;
}

PyDoc_STRVAR(event_id_buffers_doc,
"event_id_buffers(prefix, seq, /)\n--\n\n"
"The Arrow string buffers (int32 offsets, UTF-8 data) of f'{prefix}-{s}' for s in seq, seq an\n"
"int64 buffer, prefix UTF-8 bytes; None beyond 32-bit offsets.");

static PyObject *event_id_buffers(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "event_id_buffers(prefix: bytes, seq)");
        return NULL;
    }
    Py_buffer prefix, view;
    if (PyObject_GetBuffer(args[0], &prefix, PyBUF_SIMPLE)) return NULL;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE)) {
        PyBuffer_Release(&prefix);
        return NULL;
    }
    Py_ssize_t n = view.len / 8, plen = prefix.len;
    const int64_t *seq = view.buf;
    PyObject *offsets = NULL, *data = NULL, *result = NULL;
    if ((plen + 22) * n > INT32_MAX) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    offsets = PyByteArray_FromStringAndSize(NULL, (n + 1) * 4);
    data = PyByteArray_FromStringAndSize(NULL, (plen + 22) * n + 1);
    if (offsets == NULL || data == NULL) goto done;
    int32_t *off = (int32_t *)PyByteArray_AS_STRING(offsets);
    char *out = PyByteArray_AS_STRING(data);
    Py_ssize_t written = 0;
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(out + written, prefix.buf, plen);
        written += plen;
        written += dash_digits(seq[i], out + written);
        off[i + 1] = (int32_t)written;
    }
    if (PyByteArray_Resize(data, written)) goto done;
    result = PyTuple_Pack(2, offsets, data);
done:
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(event_ids_doc,
"event_ids(prefix, seq, /)\n--\n\n"
"[f'{prefix}-{s}' for s in seq], seq an int64 buffer.");

static PyObject *event_ids(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "event_ids(prefix: str, seq)");
        return NULL;
    }
    PyObject *prefix = args[0];
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE)) return NULL;
    Py_ssize_t n = view.len / 8;
    const int64_t *seq = view.buf;
    PyObject *out = PyList_New(n);
    if (out == NULL) goto done;
    int ascii = PyUnicode_IS_ASCII(prefix);
    Py_ssize_t plen = PyUnicode_GET_LENGTH(prefix);
    const char *pdata = ascii ? (const char *)PyUnicode_DATA(prefix) : NULL;
    char digits[32];
    for (Py_ssize_t i = 0; i < n; i++) {
        int dlen = dash_digits(seq[i], digits);
        PyObject *item;
        if (ascii) {
            item = PyUnicode_New(plen + dlen, 127);
            if (item != NULL) {
                char *dst = (char *)PyUnicode_DATA(item);
                memcpy(dst, pdata, plen);
                memcpy(dst + plen, digits, dlen);
            }
        } else {
            item = PyUnicode_FromFormat("%U%s", prefix, digits);
        }
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, item);
    }
done:
    PyBuffer_Release(&view);
    return out;
}


/* ---------------------------------------------------------------------------------------------
 * Handler: the capture handler on the core event bus (the fast path of _capture._handle).
 *
 * For an event emitted in the context of a running experiment whose route to this event name is
 * known and true, it appends the event's seven values to the experiment's rows, as _handle does;
 * for anything else (no experiment in the context, a catch-all experiment, a name not routed yet)
 * it calls _handle itself. The seven values are made before the first is appended, and appending
 * to a list allocates no object the garbage collector tracks, so no Python code can run between
 * them: rows from several threads never interleave, as with _handle's single `extend`. */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *var;      /* the ContextVar holding crucible_core's Context */
    PyObject *live;     /* dict: experiment id -> (routes, contexts, rows, counter) */
    PyObject *fallback; /* _capture._handle */
    PyObject *perf_ns;  /* time.perf_counter_ns */
    PyObject *time_ns;  /* time.time_ns */
} Handler;

static PyObject *s_experiment_id, *s_extend;

static PyObject *handler_call(PyObject *op, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames) {
    Handler *self = (Handler *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || kwnames != NULL) goto fallback;
    PyObject *name = args[0], *ctx = NULL, *exp_id, *entry;
    if (PyContextVar_Get(self->var, NULL, &ctx) < 0) return NULL;
    if (ctx == NULL) goto fallback;
    exp_id = PyObject_GetAttr(ctx, s_experiment_id);
    if (exp_id == NULL) {
        Py_DECREF(ctx);
        return NULL;
    }
    entry = exp_id == Py_None ? NULL : PyDict_GetItemWithError(self->live, exp_id);
    Py_DECREF(exp_id);
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
        Py_DECREF(ctx);
        if (PyErr_Occurred()) return NULL;
        goto fallback;
    }
    PyObject *routes = PyTuple_GET_ITEM(entry, 0), *contexts = PyTuple_GET_ITEM(entry, 1),
             *rows = PyTuple_GET_ITEM(entry, 2), *counter = PyTuple_GET_ITEM(entry, 3);
    PyObject *ok = PyDict_GetItemWithError(routes, name);
    if (ok != Py_True) {
        Py_DECREF(ctx);
        if (PyErr_Occurred()) return NULL;
        goto fallback; /* a name not routed yet, or routed away */
    }
    Py_INCREF(entry); /* the values below run no Python code, but keep the entry to the end */
    PyObject *values[WIDTH] = {NULL};
    PyObject *result = NULL;
    values[6] = PyLong_FromVoidPtr(ctx); /* id(ctx) */
    if (values[6] == NULL) goto done;
    int known = PyDict_Contains(contexts, values[6]);
    if (known < 0 || (!known && PyDict_SetItem(contexts, values[6], ctx) < 0)) goto done;
    if ((values[0] = PyIter_Next(counter)) == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "the counter stopped");
        goto done;
    }
    if ((values[1] = PyObject_CallNoArgs(self->perf_ns)) == NULL) goto done;
    if ((values[2] = PyObject_CallNoArgs(self->time_ns)) == NULL) goto done;
    values[3] = name;
    values[4] = args[1];
    values[5] = args[2];
    Py_INCREF(name);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    if (PyList_CheckExact(rows)) {
        Py_ssize_t size = PyList_GET_SIZE(rows);
        /* Growing a list allocates no tracked object (no collection, no finalizer can run). */
        for (int k = 0; k < WIDTH; k++) {
            if (PyList_Append(rows, values[k]) < 0) {
                /* out of memory mid-row: take back what this row added */
                PyList_SetSlice(rows, size, PyList_GET_SIZE(rows), NULL);
                goto done;
            }
        }
    } else { /* a persistent store's deque: one extend, atomic as in _handle */
        PyObject *row = PyTuple_New(WIDTH);
        if (row == NULL) goto done;
        for (int k = 0; k < WIDTH; k++) {
            Py_INCREF(values[k]);
            PyTuple_SET_ITEM(row, k, values[k]);
        }
        PyObject *done_extend = PyObject_CallMethodOneArg(rows, s_extend, row);
        Py_DECREF(row);
        if (done_extend == NULL) goto done;
        Py_DECREF(done_extend);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int k = 0; k < WIDTH; k++) Py_XDECREF(values[k]);
    Py_DECREF(entry);
    Py_DECREF(ctx);
    return result;

fallback:
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *handler_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *var, *live, *fallback, *perf_ns, *time_ns;
    static char *names[] = {"var", "live", "fallback", "perf_ns", "time_ns", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!OOO:Handler", names, &var, &PyDict_Type,
                                     &live, &fallback, &perf_ns, &time_ns))
        return NULL;
    if (!PyContextVar_CheckExact(var)) {
        PyErr_SetString(PyExc_TypeError, "var must be a contextvars.ContextVar");
        return NULL;
    }
    Handler *self = (Handler *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = handler_call;
    Py_INCREF(var);
    Py_INCREF(live);
    Py_INCREF(fallback);
    Py_INCREF(perf_ns);
    Py_INCREF(time_ns);
    self->var = var;
    self->live = live;
    self->fallback = fallback;
    self->perf_ns = perf_ns;
    self->time_ns = time_ns;
    return (PyObject *)self;
}

static int handler_traverse(PyObject *op, visitproc visit, void *arg) {
    Handler *self = (Handler *)op;
    Py_VISIT(self->var);
    Py_VISIT(self->live);
    Py_VISIT(self->fallback);
    Py_VISIT(self->perf_ns);
    Py_VISIT(self->time_ns);
    return 0;
}

static int handler_clear(PyObject *op) {
    Handler *self = (Handler *)op;
    Py_CLEAR(self->var);
    Py_CLEAR(self->live);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->perf_ns);
    Py_CLEAR(self->time_ns);
    return 0;
}

static void handler_dealloc(PyObject *op) {
    PyObject_GC_UnTrack(op);
    handler_clear(op);
    Py_TYPE(op)->tp_free(op);
}

PyDoc_STRVAR(handler_doc,
"Handler(var, live, fallback, perf_ns, time_ns)\n--\n\n"
"The capture handler's fast path: appends an event emitted in a running experiment's context\n"
"to that experiment's rows (live maps experiment ids to (routes, contexts, rows, counter));\n"
"calls fallback(name, measurements, metadata) for every other event.");

static PyTypeObject HandlerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "crucible_telemetry._speedups.Handler",
    .tp_basicsize = sizeof(Handler),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = handler_doc,
    .tp_new = handler_new,
    .tp_traverse = handler_traverse,
    .tp_clear = handler_clear,
    .tp_dealloc = handler_dealloc,
    .tp_vectorcall_offset = offsetof(Handler, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL, scan_doc},
    {"split_json", (PyCFunction)(void (*)(void))split_json, METH_FASTCALL, split_json_doc},
    {"take", (PyCFunction)(void (*)(void))take, METH_FASTCALL, take_doc},
    {"numbers", (PyCFunction)(void (*)(void))numbers, METH_FASTCALL, numbers_doc},
    {"event_ids", (PyCFunction)(void (*)(void))event_ids, METH_FASTCALL, event_ids_doc},
    {"event_id_buffers", (PyCFunction)(void (*)(void))event_id_buffers, METH_FASTCALL,
     event_id_buffers_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "crucible_telemetry._speedups",
    "The enrichment of captured events in C (optional; see _columnar.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    struct {
        PyObject **slot;
        const char *text;
    } keys[] = {
        {&k_duration, "duration"},       {&k_latency_ms, "latency_ms"},
        {&k_cost, "cost"},               {&k_cost_usd, "cost_usd"},
        {&k_input_tokens, "input_tokens"}, {&k_prompt_tokens, "prompt_tokens"},
        {&k_output_tokens, "output_tokens"}, {&k_completion_tokens, "completion_tokens"},
        {&k_model, "model"},             {&k_provider, "provider"},
        {&k_success, "success"},
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        *keys[k].slot = PyUnicode_InternFromString(keys[k].text);
        if (*keys[k].slot == NULL) return NULL;
    }
    s_experiment_id = PyUnicode_InternFromString("experiment_id");
    s_extend = PyUnicode_InternFromString("extend");
    if (s_experiment_id == NULL || s_extend == NULL || PyType_Ready(&HandlerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&HandlerType);
    if (PyModule_AddObject(m, "Handler", (PyObject *)&HandlerType) < 0) {
        Py_DECREF(&HandlerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
