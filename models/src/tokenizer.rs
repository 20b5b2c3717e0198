//! CLIP's byte-level BPE tokenizer.
//!
//! Behaviour of OpenAI's `SimpleTokenizer` (also open_clip's): lower-case, whitespace-collapsed
//! text, split by CLIP's regex, each piece's UTF-8 bytes mapped to printable characters, merged by
//! ranked BPE with `</w>` marking word ends, wrapped in `<|startoftext|>` … `<|endoftext|>` and
//! padded with zeros to the context length (truncated with the end token kept).
//!
//! The merges come from OpenAI's `bpe_simple_vocab_16e6.txt.gz` (shipped in the open_clip PyPI
//! package) or a Hugging Face `merges.txt`; the vocabulary is derived from them in the same order
//! as both implementations. Not reproduced: `ftfy.fix_text` (mojibake repair) on the input.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{ModelError, Result};

/// Id of `<|startoftext|>`.
pub(crate) const SOT_TOKEN: u32 = 49406;
/// Id of `<|endoftext|>`.
pub(crate) const EOT_TOKEN: u32 = 49407;
/// Vocabulary size of every CLIP text tower.
pub(crate) const VOCAB_SIZE: usize = 49408;
/// Context length of every CLIP text tower.
pub const CONTEXT_LENGTH: usize = 77;
/// Merges used by CLIP: 49408 - 256 bytes - 256 end-of-word bytes - 2 special tokens.
const NUM_MERGES: usize = VOCAB_SIZE - 512 - 2;
/// File name of OpenAI's merges list.
pub(crate) const OPENAI_VOCAB_FILE: &str = "bpe_simple_vocab_16e6.txt.gz";

/// GPT-2's reversible byte -> printable character table.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .map(|(b, c)| (b as u8, char::from_u32(c).expect("valid code point")))
        .collect()
}

/// The CLIP BPE tokenizer.
pub struct Tokenizer {
    byte_encoder: [char; 256],
    encoder: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    pattern: regex::Regex,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.encoder.len())
            .finish()
    }
}

impl Tokenizer {
    /// Loads merges from OpenAI's `.txt.gz` / `.txt` list or a Hugging Face `merges.txt`
    /// (both start with a header line that is skipped).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut s)
                .map_err(|e| ModelError::Vocab {
                    path: path.into(),
                    message: format!("bad gzip data: {e}"),
                })?;
            s
        } else {
            String::from_utf8(bytes).map_err(|_| ModelError::Vocab {
                path: path.into(),
                message: "not UTF-8 text".into(),
            })?
        };
        Self::from_merges_text(&text).map_err(|message| ModelError::Vocab {
            path: path.into(),
            message,
        })
    }

    fn from_merges_text(text: &str) -> std::result::Result<Self, String> {
        let merges: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .take(NUM_MERGES)
            .enumerate()
            .map(|(i, line)| {
                let mut it = line.split(' ');
                match (it.next(), it.next(), it.next()) {
                    (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                        Ok((a.to_string(), b.to_string()))
                    }
                    _ => Err(format!("line {} is not a merge pair: '{line}'", i + 2)),
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        if merges.len() != NUM_MERGES {
            return Err(format!(
                "expected {NUM_MERGES} merges, found {}",
                merges.len()
            ));
        }
        let table = bytes_to_unicode();
        let mut byte_encoder = ['\0'; 256];
        for (b, c) in &table {
            byte_encoder[*b as usize] = *c;
        }
        let mut vocab: Vec<String> = table.iter().map(|(_, c)| c.to_string()).collect();
        vocab.extend(table.iter().map(|(_, c)| format!("{c}</w>")));
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push("<|startoftext|>".into());
        vocab.push("<|endoftext|>".into());
        let encoder = vocab
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, i as u32))
            .collect();
        let ranks = merges
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, i))
            .collect();
        // CLIP's split pattern (special tokens, English contractions, letter runs, single digits,
        // runs of other non-space characters), applied to lower-cased text.
        let pattern = regex::Regex::new(
            r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
        )
        .expect("static regex");
        Ok(Tokenizer {
            byte_encoder,
            encoder,
            ranks,
            pattern,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Finds OpenAI's merges file: open_clip's copy in the virtualenv `active_venv` (the
    /// caller's `VIRTUAL_ENV`) or in this project's `.venv`.
    pub fn discover(active_venv: Option<&Path>) -> Result<PathBuf> {
        let mut venvs: Vec<PathBuf> = active_venv.map(Path::to_path_buf).into_iter().collect();
        venvs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
        for venv in &venvs {
            if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
                for e in entries.flatten() {
                    let cand = e
                        .path()
                        .join("site-packages/open_clip")
                        .join(OPENAI_VOCAB_FILE);
                    if cand.is_file() {
                        return Ok(cand);
                    }
                }
            }
        }
        Err(ModelError::Vocab {
            path: OPENAI_VOCAB_FILE.into(),
            message: "not found: pass --vocab FILE or set CFKIT_BPE_VOCAB (the file ships in the \
                      open-clip-torch package, and a Hugging Face checkpoint's merges.txt works too)"
                .into(),
        })
    }

    fn bpe(&self, word: &str) -> Vec<u32> {
        if let Some(ids) = self.cache.lock().expect("tokenizer cache").get(word) {
            return ids.clone();
        }
        let chars: Vec<char> = word.chars().collect();
        let mut parts: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        if let Some(last) = parts.last_mut() {
            last.push_str("</w>");
        }
        while parts.len() > 1 {
            // Lowest-ranked adjacent pair.
            let best = parts
                .windows(2)
                .filter_map(|w| {
                    self.ranks
                        .get(&(w[0].clone(), w[1].clone()))
                        .map(|r| (*r, w))
                })
                .min_by_key(|(r, _)| *r)
                .map(|(_, w)| (w[0].clone(), w[1].clone()));
            let Some((a, b)) = best else { break };
            let mut merged = Vec::with_capacity(parts.len());
            let mut i = 0;
            while i < parts.len() {
                if i + 1 < parts.len() && parts[i] == a && parts[i + 1] == b {
                    merged.push(format!("{a}{b}"));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut parts[i]));
                    i += 1;
                }
            }
            parts = merged;
        }
        let ids: Vec<u32> = parts.iter().map(|p| self.encoder[p.as_str()]).collect();
        self.cache
            .lock()
            .expect("tokenizer cache")
            .insert(word.to_string(), ids.clone());
        ids
    }

    /// BPE ids of a text, without start/end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean(text);
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&text) {
            let piece = m.as_str();
            if let Some(&id) = self.encoder.get(piece).filter(|_| piece.starts_with("<|")) {
                ids.push(id);
                continue;
            }
            let mapped: String = piece
                .bytes()
                .map(|b| self.byte_encoder[b as usize])
                .collect();
            ids.extend(self.bpe(&mapped));
        }
        ids
    }

    /// `[SOT] ids [EOT]`, truncated to `context` (end token kept) and zero-padded: one row of
    /// the text tower's input.
    pub fn tokenize(&self, text: &str, context: usize) -> Vec<i64> {
        let mut row = vec![SOT_TOKEN as i64];
        row.extend(self.encode(text).into_iter().map(|i| i as i64));
        row.push(EOT_TOKEN as i64);
        if row.len() > context {
            row.truncate(context);
            row[context - 1] = EOT_TOKEN as i64;
        }
        row.resize(context, 0);
        row
    }
}

/// `html.unescape` of the common entities, whitespace collapsed, trimmed, lower-cased.
fn clean(text: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..2 {
        s = unescape_html(&s);
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn unescape_html(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let re = regex::Regex::new(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|amp|lt|gt|quot|apos|nbsp);")
        .expect("static regex");
    re.replace_all(s, |c: &regex::Captures| {
        let e = &c[1];
        let ch = match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            _ => e[1..].parse::<u32>().ok().and_then(char::from_u32),
        };
        ch.map(String::from).unwrap_or_else(|| c[0].to_string())
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection() {
        let t = bytes_to_unicode();
        assert_eq!(t.len(), 256);
        let chars: std::collections::HashSet<_> = t.iter().map(|(_, c)| *c).collect();
        assert_eq!(chars.len(), 256);
        assert_eq!(t[0], (b'!', '!'));
    }

    #[test]
    fn cleaning_collapses_whitespace_unescapes_and_lowercases() {
        assert_eq!(clean("  A  Photo&amp;of\tthe &#65;  "), "a photo&of the a");
    }

    #[test]
    fn wrong_merges_file_is_a_clear_error() {
        let err = Tokenizer::from_merges_text("#version\na b\n")
            .err()
            .unwrap();
        assert!(err.contains("expected"), "{err}");
        let err = Tokenizer::from_merges_text("#version\na b c\n")
            .err()
            .unwrap();
        assert!(err.contains("line 2"), "{err}");
    }
}
