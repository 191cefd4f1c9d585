//! The caps on what a host's agent session may write, shared by every transport (ssh, local,
//! WinRM): one answer line, the output of one round of requests, and the stderr kept for
//! messages. A host that writes more is cut off with the cap named, instead of filling memory.

/// The longest line of agent output kmsconf reads. The longest legitimate line is the discovery
/// answer (the base64 JSON of the host's licensing state: about 8 KiB for the fixtures'
/// KMS host, and under 1 MiB for a host listing every product Windows and Office know), so the
/// cap leaves a margin of eight times that.
pub const MAX_LINE: usize = 8 << 20;
/// The most agent output kmsconf reads for one round of requests (a batch's answers and any
/// other line the host writes meanwhile).
pub const MAX_ROUND: usize = 64 << 20;
/// How much of a session's stderr is kept for messages: its first 64 KiB.
pub const MAX_STDERR: usize = 64 << 10;

/// A line of agent output passed [`MAX_LINE`] bytes without its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Splits output into lines as it arrives, holding at most [`MAX_LINE`] bytes of an unfinished
/// line.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Takes `bytes` in and hands each complete line (with its newline) to `line`.
    pub fn push(&mut self, bytes: &[u8], mut line: impl FnMut(String)) -> Result<(), LineTooLong> {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            if self.partial.len() + end + 1 > MAX_LINE {
                return Err(LineTooLong);
            }
            self.partial.extend_from_slice(&rest[..=end]);
            line(String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned());
            rest = &rest[end + 1..];
        }
        if self.partial.len() + rest.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The unfinished last line, if any, once the output has ended.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned())
    }
}

/// A session's stderr: its first [`MAX_STDERR`] bytes, and how many more were not kept.
#[derive(Debug, Default)]
pub struct Stderr {
    kept: Vec<u8>,
    dropped: u64,
}

impl Stderr {
    pub fn push(&mut self, bytes: &[u8]) {
        let room = MAX_STDERR.saturating_sub(self.kept.len()).min(bytes.len());
        self.kept.extend_from_slice(&bytes[..room]);
        self.dropped += (bytes.len() - room) as u64;
    }

    /// The kept text, with a last line saying what was left out.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.kept).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n[stderr cut: kmsconf keeps its first {} KiB; {} more bytes were not kept]",
                MAX_STDERR / 1024,
                self.dropped
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(chunks: &[&[u8]]) -> Result<Vec<String>, LineTooLong> {
        let mut reader = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk, |l| out.push(l))?;
        }
        out.extend(reader.finish());
        Ok(out)
    }

    #[test]
    fn a_line_over_the_cap_is_refused_however_it_arrives() {
        let big = vec![b'A'; MAX_LINE];
        assert_eq!(lines(&[&big, b"\n"]), Err(LineTooLong));
        assert_eq!(lines(&[&big[..10], &big, b"x"]), Err(LineTooLong));
        let fits = lines(&[&big[1..], b"\nok\n"]).expect("fits");
        assert_eq!((fits[0].len(), fits[1].as_str()), (MAX_LINE, "ok\n"));
    }

    #[test]
    fn stderr_keeps_its_start_and_says_what_it_cut() {
        let mut stderr = Stderr::default();
        stderr.push(b"ssh: first\n");
        stderr.push(&vec![b'x'; 2 * MAX_STDERR]);
        let text = stderr.text();
        assert!(text.starts_with("ssh: first\n"), "{}", &text[..20]);
        assert!(
            text.ends_with(
                "[stderr cut: kmsconf keeps its first 64 KiB; 65547 more bytes were not kept]"
            ),
            "{}",
            &text[text.len() - 100..]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// However output is cut into reads, the lines are the same and hold all of it.
        #[test]
        fn lines_do_not_depend_on_how_reads_cut_the_output(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..512),
            cuts in proptest::collection::vec(0usize..512, 0..8),
        ) {
            let whole = lines(&[&text]).expect("short");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([text.len()]) {
                chunks.push(&text[start..c]);
                start = c;
            }
            prop_assert_eq!(lines(&chunks).expect("short"), whole.clone());
            prop_assert_eq!(whole.concat(), String::from_utf8_lossy(&text).into_owned());
        }
    }
}
