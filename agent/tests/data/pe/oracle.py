"""Independent PE reader (struct only): imphash as pefile computes it, and
the version strings of the first translation. Usage: oracle.py FILE..."""
import hashlib, struct, sys

def parse(data):
    e_lfanew = struct.unpack_from('<I', data, 0x3c)[0]
    assert data[e_lfanew:e_lfanew+4] == b'PE\0\0'
    nsec, = struct.unpack_from('<H', data, e_lfanew + 6)
    opt_size, = struct.unpack_from('<H', data, e_lfanew + 20)
    opt = e_lfanew + 24
    magic, = struct.unpack_from('<H', data, opt)
    pe64 = magic == 0x20b
    dd = opt + (112 if pe64 else 96)
    dirs = [struct.unpack_from('<II', data, dd + 8 * i) for i in range(16)]
    secs = []
    for i in range(nsec):
        o = opt + opt_size + 40 * i
        vsize, va, rawsize, rawptr = struct.unpack_from('<IIII', data, o + 8)
        secs.append((va, max(vsize, rawsize), rawptr, rawsize))
    def off(rva):
        for va, size, ptr, raw in secs:
            if va <= rva < va + size and rva - va < raw:
                return ptr + rva - va
        raise KeyError(rva)
    return data, pe64, dirs, off

def cstr(data, o):
    return data[o:data.index(b'\0', o)]

def imphash(data, pe64, dirs, off):
    rva = dirs[1][0]
    if not rva:
        return None
    items = []
    o = off(rva)
    while True:
        oft, _, _, name, ft = struct.unpack_from('<IIIII', data, o)
        if (oft, name, ft) == (0, 0, 0):
            break
        o += 20
        lib = cstr(data, off(name)).decode().lower()
        parts = lib.rsplit('.', 1)
        if len(parts) > 1 and parts[1] in ('ocx', 'sys', 'dll'):
            lib = parts[0]
        t = off(oft or ft)
        size, flag = (8, 1 << 63) if pe64 else (4, 1 << 31)
        while True:
            v = int.from_bytes(data[t:t + size], 'little')
            t += size
            if v == 0:
                break
            if v & flag:
                fn = 'ord%d' % (v & 0xffff)
            else:
                fn = cstr(data, off(v & 0x7fffffff) + 2).decode().lower()
            items.append('%s.%s' % (lib, fn))
    return hashlib.md5(','.join(items).encode()).hexdigest() if items else None

def version(data, pe64, dirs, off):
    rva = dirs[2][0]
    if not rva:
        return None
    base = off(rva)
    def table(o):
        named, ids = struct.unpack_from('<HH', data, base + o + 12)
        return [struct.unpack_from('<II', data, base + o + 16 + 8 * i) for i in range(named + ids)]
    def find(o, ident):
        for name, target in table(o):
            if name == ident:
                return target & 0x7fffffff
    names = find(0, 16)
    if names is None:
        return None
    langs = find(names, 1)
    if langs is None:
        return None
    entry = table(langs)[0][1]
    data_rva, size = struct.unpack_from('<II', data, base + entry)
    vi = data[off(data_rva):off(data_rva) + size]
    def node(o):
        length, vlen, typ = struct.unpack_from('<HHH', vi, o)
        k = o + 6
        key_end = k
        while vi[key_end:key_end + 2] != b'\0\0':
            key_end += 2
        key = vi[k:key_end].decode('utf-16-le')
        v = (key_end + 2 + 3) & ~3
        return length, vlen, typ, key, v
    def children(start, end):
        o = (start + 3) & ~3
        while o + 6 <= end:
            length = struct.unpack_from('<H', vi, o)[0]
            if length == 0:
                break
            yield o
            o = (o + length + 3) & ~3
    length, vlen, _, key, v = node(0)
    assert key == 'VS_VERSION_INFO', key
    strings, trans = {}, []
    for c in children(v + vlen, length):
        clen, _, _, ckey, cv = node(c)
        if ckey == 'StringFileInfo':
            for t in children(cv, c + clen):
                tlen, _, _, tkey, tv = node(t)
                for s in children(tv, t + tlen):
                    slen, svlen, _, skey, sv = node(s)
                    strings[(tkey.upper(), skey)] = vi[sv:sv + 2 * svlen].decode('utf-16-le', 'replace').rstrip('\0')
        elif ckey == 'VarFileInfo':
            for var in children(cv, c + clen):
                _, vvlen, _, vkey, vv = node(var)
                if vkey == 'Translation':
                    trans = [struct.unpack_from('<HH', vi, vv + 4 * i) for i in range(vvlen // 4)]
    lang = '%04X%04X' % (trans[0] if trans else (0x409, 0x4b0))
    out = {}
    for k in ('FileVersion', 'FileDescription', 'ProductName', 'CompanyName', 'OriginalFilename'):
        s = strings.get((lang, k), '').strip('\0').strip()
        out[k] = s or None
    return out

for path in sys.argv[1:]:
    pe = parse(open(path, 'rb').read())
    try:
        ih = imphash(*pe)
    except Exception as e:
        ih = 'ERR %r' % e
    try:
        ver = version(*pe)
    except Exception as e:
        ver = 'ERR %r' % e
    print(path, ih, ver)
