//! Brace expansion of shard lists, as WebDataset users write them (`train-{0000..0146}.tar`,
//! `{train,val}-{0..3}.tar`), with the rules of the `braceexpand` package that webdataset uses:
//! comma lists (nested), integer ranges `{N..M}` and `{N..M..S}` (inclusive, descending when
//! N > M), zero padding to the wider endpoint when either endpoint has a leading zero, character
//! ranges `{a..e}`; `{}` and `{x}` stay literal; left-to-right cartesian product.

/// More names than this is a mistake in the pattern, not a dataset.
const MAX_EXPANSION: usize = 10_000_000;

/// Every name `pattern` stands for, in order.
pub(crate) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let out = expand_inner(pattern)?;
    if out.len() > MAX_EXPANSION {
        return Err(format!(
            "'{pattern}' expands to {} names (more than {MAX_EXPANSION})",
            out.len()
        ));
    }
    Ok(out)
}

fn expand_inner(pattern: &str) -> Result<Vec<String>, String> {
    let Some((open, close)) = first_group(pattern) else {
        return Ok(vec![pattern.to_string()]);
    };
    let (prefix, inner, rest) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let alternatives = match alternatives(inner)? {
        Some(a) => a,
        // `{}` / `{x}`: literal braces; expand what follows.
        None => {
            return Ok(expand_inner(rest)?
                .into_iter()
                .map(|r| format!("{prefix}{{{inner}}}{r}"))
                .collect())
        }
    };
    let tails = expand_inner(rest)?;
    let mut out = Vec::with_capacity(alternatives.len() * tails.len());
    for a in &alternatives {
        for t in &tails {
            out.push(format!("{prefix}{a}{t}"));
            if out.len() > MAX_EXPANSION {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// Byte offsets of the first `{` and its matching `}`.
fn first_group(s: &str) -> Option<(usize, usize)> {
    let open = s.find('{')?;
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((open, open + i));
                }
            }
            _ => {}
        }
    }
    None
}

/// The expansions of a group's inside: a comma list or a range; `None` for neither.
fn alternatives(inner: &str) -> Result<Option<Vec<String>>, String> {
    let parts = split_top_level(inner);
    if parts.len() > 1 {
        let mut out = Vec::new();
        for p in parts {
            out.extend(expand_inner(p)?);
        }
        return Ok(Some(out));
    }
    Ok(range(inner))
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `N..M[..S]` over integers or single characters.
fn range(inner: &str) -> Option<Vec<String>> {
    let fields: Vec<&str> = inner.split("..").collect();
    let (a, b, step) = match fields.as_slice() {
        [a, b] => (*a, *b, 1i64),
        [a, b, s] => (*a, *b, s.parse::<i64>().ok()?.checked_abs()?.max(1)),
        _ => return None,
    };
    if let (Ok(start), Ok(end)) = (a.parse::<i64>(), b.parse::<i64>()) {
        let padded = |s: &str| {
            let digits = s.trim_start_matches('-');
            digits.len() > 1 && digits.starts_with('0')
        };
        let width = if padded(a) || padded(b) {
            a.len().max(b.len())
        } else {
            0
        };
        let mut out = Vec::new();
        let mut v = start;
        loop {
            if (start <= end && v > end) || (start > end && v < end) {
                break;
            }
            out.push(format!("{v:0width$}"));
            if out.len() > MAX_EXPANSION {
                break;
            }
            v = if start <= end { v + step } else { v - step };
        }
        return Some(out);
    }
    let (mut ca, mut cb) = (a.chars(), b.chars());
    match (ca.next(), ca.next(), cb.next(), cb.next()) {
        (Some(x), None, Some(y), None) => {
            let (x, y) = (x as u32, y as u32);
            let seq: Vec<u32> = if x <= y {
                (x..=y).step_by(step as usize).collect()
            } else {
                (y..=x).rev().step_by(step as usize).collect()
            };
            Some(
                seq.into_iter()
                    .filter_map(char::from_u32)
                    .map(String::from)
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn e(p: &str) -> Vec<String> {
        expand(p).unwrap()
    }

    #[test]
    fn ranges_pad_like_braceexpand() {
        let v = e("train-{0000..0146}.tar");
        assert_eq!(v.len(), 147);
        assert_eq!(v[0], "train-0000.tar");
        assert_eq!(v[146], "train-0146.tar");
        assert_eq!(e("{8..11}"), ["8", "9", "10", "11"]);
        assert_eq!(e("{1..010}")[0], "001");
        assert_eq!(e("{00..3}"), ["00", "01", "02", "03"]);
        assert_eq!(e("{10..8}"), ["10", "9", "8"]);
        assert_eq!(e("{0..6..2}"), ["0", "2", "4", "6"]);
        assert_eq!(e("{a..c}"), ["a", "b", "c"]);
    }

    #[test]
    fn lists_nest_and_multiply_left_to_right() {
        assert_eq!(e("{a,b{1..2}}"), ["a", "b1", "b2"]);
        assert_eq!(e("{1..2}{a,b}"), ["1a", "1b", "2a", "2b"]);
        assert_eq!(e("x/{train,val}.tar"), ["x/train.tar", "x/val.tar"]);
        assert_eq!(e("plain.tar"), ["plain.tar"]);
        assert_eq!(e("a{}b"), ["a{}b"]);
        assert_eq!(e("a{x}b{1..2}"), ["a{x}b1", "a{x}b2"]);
        assert_eq!(e("unbalanced{1..2"), ["unbalanced{1..2"]);
    }
}
