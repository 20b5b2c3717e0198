//! Listing the members of a tar file without reading their data: POSIX ustar and pax headers
//! (what Python's `tarfile` writes for webdataset), GNU long names and base-256 sizes.
//!
//! Damage is reported, never fatal: a header whose checksum fails is skipped and the scan looks
//! for the next valid header at the following 512-byte blocks (the members in between are lost,
//! the rest kept); a member that runs past the end of the file (a truncated download) ends the
//! scan with a problem naming it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Tar's block size (POSIX.1-1988 ustar).
const BLOCK: u64 = 512;
/// A pax or GNU long-name record larger than this is damage, not a name.
const MAX_META: u64 = 1 << 20;

/// A regular file in the archive: its name and where its data are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TarMember {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// The regular files found, in archive order, and what was wrong.
#[derive(Debug, Default)]
pub(crate) struct TarScan {
    pub members: Vec<TarMember>,
    pub problems: Vec<String>,
}

/// Headers that precede the member they describe.
#[derive(Default)]
struct Pending {
    name: Option<String>,
    size: Option<u64>,
}

/// Scans `path`; an error only when the file cannot be opened or read at all.
pub(crate) fn scan(path: &Path) -> std::io::Result<TarScan> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut out = TarScan::default();
    let (mut pos, mut pending) = (0u64, Pending::default());
    // Start of the damaged stretch being skipped, if any.
    let mut skipping: Option<u64> = None;
    let mut block = [0u8; BLOCK as usize];
    loop {
        if pos + BLOCK > len {
            if pos < len {
                out.problems.push(format!(
                    "truncated tar: the file ends inside a header at byte {pos} (file size {len})"
                ));
            }
            break;
        }
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut block)?;
        if block.iter().all(|&b| b == 0) {
            if skipping.is_none() {
                break; // end-of-archive marker
            }
            pos += BLOCK;
            continue;
        }
        if !checksum_ok(&block) {
            if skipping.is_none() {
                skipping = Some(pos);
            }
            pending = Pending::default();
            pos += BLOCK;
            continue;
        }
        if let Some(from) = skipping.take() {
            out.problems.push(format!(
                "damaged tar: bytes {from}..{pos} hold no valid header (checksum); members stored there are lost, the scan goes on at byte {pos}"
            ));
        }
        let kind = block[156];
        // A pax `size` describes the member after the extended header, never another header.
        let meta = matches!(kind, b'x' | b'g' | b'L' | b'K');
        let header_size = octal_or_binary(&block[124..136]);
        let size = match (header_size, pending.size.filter(|_| !meta)) {
            (_, Some(s)) => s,
            (Some(s), None) => s,
            (None, None) => {
                skipping = Some(pos);
                pos += BLOCK;
                continue;
            }
        };
        let data = pos + BLOCK;
        let name = header_name(&block);
        if data.saturating_add(size) > len {
            out.problems.push(format!(
                "truncated tar: member '{}' declares {size} bytes at byte {data}, the file ends at {len}",
                pending.name.take().unwrap_or(name)
            ));
            break;
        }
        match kind {
            b'x' | b'L' if size > MAX_META => {
                out.problems.push(format!(
                    "damaged tar: a {size}-byte extended header at byte {pos}; skipped"
                ));
                pending = Pending::default();
            }
            b'x' => {
                let text = read_at(&mut f, data, size)?;
                pending = pax_records(&text);
            }
            b'L' => {
                let text = read_at(&mut f, data, size)?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                pending.name = Some(String::from_utf8_lossy(&text[..end]).into_owned());
            }
            // Global pax headers and GNU long link names describe nothing we keep.
            b'g' | b'K' => {}
            b'0' | 0 | b'7' => {
                out.members.push(TarMember {
                    name: pending.name.take().unwrap_or(name),
                    offset: data,
                    size,
                });
                pending = Pending::default();
            }
            _ => pending = Pending::default(), // directories, links, devices
        }
        pos = data + size.div_ceil(BLOCK) * BLOCK;
    }
    if let Some(from) = skipping {
        out.problems.push(format!(
            "damaged tar: bytes {from}..{len} hold no valid header (checksum); members stored there are lost"
        ));
    }
    Ok(out)
}

fn read_at(f: &mut File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// The header's checksum: the unsigned sum of its bytes with the checksum field read as spaces
/// (POSIX), or the signed sum some old writers used.
fn checksum_ok(b: &[u8; BLOCK as usize]) -> bool {
    let Some(stored) = octal_or_binary(&b[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { x };
        unsigned += x as u64;
        signed += x as i8 as i64;
    }
    stored == unsigned || stored as i64 == signed
}

/// A numeric field: octal ASCII (spaces/NULs around it), or GNU base-256 when the high bit of
/// the first byte is set.
fn octal_or_binary(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let t = text.trim();
    if t.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(t, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// `name`, under ustar's `prefix` when the header is POSIX ustar.
fn header_name(b: &[u8; BLOCK as usize]) -> String {
    let name = cstr(&b[0..100]);
    if &b[257..263] == b"ustar\0" {
        let prefix = cstr(&b[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// `"<len> <key>=<value>\n"` records; `path` and `size` apply to the next member.
fn pax_records(text: &[u8]) -> Pending {
    let mut p = Pending::default();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(n) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if n <= space + 1 || n > rest.len() {
            break;
        }
        let record = &rest[space + 1..n];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => p.name = Some(String::from_utf8_lossy(value).into_owned()),
                b"size" => p.size = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                _ => {}
            }
        }
        rest = &rest[n..];
    }
    p
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header for a regular file (`kind` b'0') or a pax header (`kind` b'x').
    pub(crate) fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..107].copy_from_slice(b"0000444");
        b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        b[156] = kind;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| x as u32).sum();
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        b
    }

    /// A tar of `(name, data)` members, each behind a pax header naming it, as tarfile writes.
    pub(crate) fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in members {
            let rec = format!("path={name}\n");
            let len = rec.len() + 3; // "NN " prefix for lengths of two digits
            let pax = format!("{len} {rec}");
            out.extend(header("././@PaxHeader", pax.len(), b'x'));
            out.extend(pax.as_bytes());
            out.resize(out.len().div_ceil(512) * 512, 0);
            out.extend(header("short-name", data.len(), b'0'));
            out.extend(*data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend([0u8; 1024]);
        out
    }

    fn scan_bytes(bytes: &[u8]) -> TarScan {
        let dir = std::env::temp_dir().join(format!("cfkit-tar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{}.tar", blake3::hash(bytes).to_hex()));
        std::fs::write(&p, bytes).unwrap();
        let s = scan(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        s
    }

    #[test]
    fn pax_names_and_offsets() {
        let tar = archive(&[("s0.cls", b"3"), ("s0.jpg", &[7u8; 700])]);
        let s = scan_bytes(&tar);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.members.len(), 2);
        assert_eq!(s.members[0].name, "s0.cls");
        assert_eq!(s.members[1].name, "s0.jpg");
        let m = &s.members[1];
        assert_eq!(
            &tar[m.offset as usize..(m.offset + m.size) as usize],
            &[7u8; 700]
        );
    }

    #[test]
    fn a_truncated_member_ends_the_scan_with_its_name() {
        let tar = archive(&[("a.cls", b"1"), ("a.jpg", &[1u8; 2000]), ("b.cls", b"2")]);
        let cut = &tar[..7 * 512 + 1000];
        let s = scan_bytes(cut);
        assert_eq!(s.members.len(), 1);
        assert!(
            s.problems[0].contains("member 'a.jpg' declares 2000 bytes"),
            "{:?}",
            s.problems
        );
    }

    #[test]
    fn a_damaged_header_loses_only_its_member() {
        let mut tar = archive(&[("a.cls", b"1"), ("b.cls", b"2"), ("c.cls", b"3")]);
        // The second member's ustar header: blocks 0-3 are the first member (pax header, pax
        // record, header, data), block 4-5 the second's pax header and record.
        tar[6 * 512 + 10] ^= 0xff;
        let s = scan_bytes(&tar);
        let names: Vec<_> = s.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a.cls", "c.cls"]);
        assert!(
            s.problems[0].contains("no valid header"),
            "{:?}",
            s.problems
        );
    }

    #[test]
    fn numbers_octal_and_base_256() {
        assert_eq!(octal_or_binary(b"00000001750\0"), Some(1000));
        assert_eq!(
            octal_or_binary(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]),
            Some(1000)
        );
        assert_eq!(octal_or_binary(b"12x\0"), None);
    }
}
