//! Reading a `.case` file into the steps the player runs. The format is
//! documented in conformance/cases/README.md.

use crate::pattern::{self, Pattern};
use crate::text::{encode_request, words, Cursor};

/// One case file.
#[derive(Debug)]
pub struct Script {
    /// The file name, `qpush.case`.
    pub name: String,
    /// The protocols it runs in (`@proto`), each on a fresh server.
    pub protos: Vec<u8>,
    /// Extra server flags (`@server`).
    pub server_args: Vec<String>,
    pub steps: Vec<Step>,
    /// Its `=>` lines.
    pub expectations: usize,
}

/// One step, with the line it comes from.
#[derive(Clone, Debug)]
pub struct Step {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// Bytes to send on the current connection: a request (with its
    /// words, so the player can follow HELLO and RESET), or `@raw` bytes.
    Send {
        bytes: Vec<u8>,
        argv: Option<Vec<Vec<u8>>>,
    },
    /// Read one reply on the current connection and check it.
    Expect(Expect),
    /// `@conn name`
    Conn(String),
    /// `@sleep ms`
    Sleep(u64),
    /// `@blocked n`: wait until the server counts n blocked clients.
    Blocked(u64),
    /// `@closed`: the server closes the current connection.
    Closed,
    /// `@disconnect`: the client closes the current connection.
    Disconnect,
    /// `@exit code`: the server process exits with this status.
    Exit(i32),
    /// `@split`: the requests, sent split at every byte, each split on a
    /// fresh connection, and the replies expected each time.
    Split {
        bytes: Vec<u8>,
        expects: Vec<(usize, Expect)>,
    },
}

/// A `=>` line.
#[derive(Clone, Debug)]
pub struct Expect {
    /// `=>2` or `=>3`: only in runs of that protocol.
    pub proto: Option<u8>,
    pub pattern: Pattern,
    /// `@bug reason`: a known failure.
    pub bug: Option<String>,
}

/// A `@split` or `@repeat` collecting the lines it applies to: its
/// requests, then their `=>` lines.
#[derive(Debug)]
enum Block {
    /// The requests' bytes, sent as one, and the replies.
    Split {
        line: usize,
        bytes: Vec<u8>,
        expects: Vec<(usize, Expect)>,
    },
    /// One request, and its replies.
    Repeat {
        line: usize,
        times: usize,
        send: Option<Step>,
        expects: Vec<Step>,
    },
}

impl Block {
    /// Takes the line if it belongs to the block, or gives it back.
    fn take(&mut self, line: usize, kind: Kind) -> Option<Kind> {
        match (self, kind) {
            (Block::Split { bytes, expects, .. }, Kind::Send { bytes: more, .. }) if expects.is_empty() => {
                bytes.extend(more);
                None
            }
            (Block::Split { bytes, expects, .. }, Kind::Expect(e)) if !bytes.is_empty() => {
                expects.push((line, e));
                None
            }
            (Block::Repeat { send, .. }, kind @ Kind::Send { .. }) if send.is_none() => {
                *send = Some(Step { line, kind });
                None
            }
            (Block::Repeat { send, expects, .. }, kind @ Kind::Expect(_)) if send.is_some() => {
                expects.push(Step { line, kind });
                None
            }
            (_, kind) => Some(kind),
        }
    }

    /// The steps the block stands for. A @repeat queues its request
    /// `times` times (one write), then checks its replies as many times.
    fn close(self, steps: &mut Vec<Step>) -> Result<(), (usize, String)> {
        match self {
            Block::Split { line, bytes, expects } => {
                if expects.is_empty() {
                    return Err((line, "@split needs requests, then `=>` lines".into()));
                }
                steps.push(Step {
                    line,
                    kind: Kind::Split { bytes, expects },
                });
            }
            Block::Repeat {
                line,
                times,
                send,
                expects,
            } => {
                let Some(send) = send.filter(|_| !expects.is_empty()) else {
                    return Err((line, "@repeat needs one request, then its `=>` lines".into()));
                };
                steps.extend(std::iter::repeat_n(send, times));
                for _ in 0..times {
                    steps.extend(expects.iter().cloned());
                }
            }
        }
        Ok(())
    }
}

/// Parses a case file; an error names its line.
pub fn parse(name: &str, text: &str) -> Result<Script, (usize, String)> {
    let mut script = Script {
        name: name.to_owned(),
        protos: vec![2, 3],
        server_args: Vec::new(),
        steps: Vec::new(),
        expectations: 0,
    };
    // A `@bug` waits for the next `=>` line; it then covers every `=>`
    // line up to the next request or directive.
    let (mut pending_bug, mut active_bug): (Option<String>, Option<String>) = (None, None);
    let mut block: Option<Block> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let kind = match step(line).map_err(|e| (n, e))? {
            Parsed::Expect(mut expect) => {
                script.expectations += 1;
                if pending_bug.is_some() {
                    active_bug = pending_bug.take();
                }
                expect.bug = active_bug.clone();
                Kind::Expect(expect)
            }
            Parsed::Bug(reason) => {
                pending_bug = Some(reason);
                active_bug = None;
                continue;
            }
            Parsed::Header(directive, args) => {
                if !script.steps.is_empty() || block.is_some() {
                    return Err((n, format!("@{directive} belongs before the first request")));
                }
                if directive == "proto" {
                    script.protos = args
                        .iter()
                        .map(|a| match a.as_str() {
                            "2" => Ok(2),
                            "3" => Ok(3),
                            _ => Err((n, format!("unknown protocol {a}"))),
                        })
                        .collect::<Result<_, _>>()?;
                } else {
                    script.server_args.extend(args);
                }
                continue;
            }
            Parsed::Block(mut new) => {
                let (Block::Split { line, .. } | Block::Repeat { line, .. }) = &mut new;
                *line = n;
                if let Some(open) = block.replace(new) {
                    open.close(&mut script.steps)?;
                }
                active_bug = None;
                continue;
            }
            Parsed::Step(kind) => {
                active_bug = None;
                kind
            }
        };
        let kind = match &mut block {
            Some(open) => match open.take(n, kind) {
                None => continue,
                Some(kind) => {
                    block.take().map_or(Ok(()), |b| b.close(&mut script.steps))?;
                    kind
                }
            },
            None => kind,
        };
        script.steps.push(Step { line: n, kind });
    }
    if let Some(open) = block {
        open.close(&mut script.steps)?;
    }
    if pending_bug.is_some() {
        return Err((text.lines().count(), "@bug with no `=>` line after it".into()));
    }
    Ok(script)
}

/// What one line says.
enum Parsed {
    Step(Kind),
    Expect(Expect),
    Bug(String),
    /// `@proto` or `@server`, with their words.
    Header(&'static str, Vec<String>),
    /// `@split` or `@repeat n`.
    Block(Block),
}

fn step(line: &str) -> Result<Parsed, String> {
    if let Some(rest) = line.strip_prefix("=>") {
        let (proto, text) = match rest.as_bytes().first() {
            Some(b'2') => (Some(2), &rest[1..]),
            Some(b'3') => (Some(3), &rest[1..]),
            _ => (None, rest),
        };
        if !text.starts_with(' ') {
            return Err("write `=> reply`, `=>2 reply` or `=>3 reply`".into());
        }
        let pattern = pattern::parse(text).map_err(|e| format!("bad reply: {e}"))?;
        return Ok(Parsed::Expect(Expect {
            proto,
            pattern,
            bug: None,
        }));
    }
    let Some(directive) = line.strip_prefix('@') else {
        let argv = words(line)?;
        let bytes = encode_request(&argv);
        return Ok(Parsed::Step(Kind::Send {
            bytes,
            argv: Some(argv),
        }));
    };
    let (name, args) = directive
        .split_once(char::is_whitespace)
        .unwrap_or((directive, ""));
    let args = args.trim();
    let number = |what: &str| -> Result<u64, String> {
        args.parse()
            .map_err(|_| format!("@{name} takes a number of {what}"))
    };
    let strings = || -> Result<Vec<String>, String> {
        Ok(words(args)?
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned())
            .collect())
    };
    Ok(match name {
        "proto" => Parsed::Header("proto", strings()?),
        "server" => Parsed::Header("server", strings()?),
        "bug" if !args.is_empty() => Parsed::Bug(args.to_owned()),
        "split" if args.is_empty() => Parsed::Block(Block::Split {
            line: 0,
            bytes: Vec::new(),
            expects: Vec::new(),
        }),
        "repeat" => Parsed::Block(Block::Repeat {
            line: 0,
            times: number("times")? as usize,
            send: None,
            expects: Vec::new(),
        }),
        "raw" => {
            let mut c = Cursor::new(args);
            let mut bytes = Vec::new();
            while !c.at_end() {
                bytes.extend(c.quoted()?);
            }
            if bytes.is_empty() {
                return Err("@raw needs quoted bytes".into());
            }
            Parsed::Step(Kind::Send { bytes, argv: None })
        }
        "conn" if !args.is_empty() && !args.contains(' ') => Parsed::Step(Kind::Conn(args.to_owned())),
        "sleep" => Parsed::Step(Kind::Sleep(number("ms")?)),
        "blocked" => Parsed::Step(Kind::Blocked(number("clients")?)),
        "closed" if args.is_empty() => Parsed::Step(Kind::Closed),
        "disconnect" if args.is_empty() => Parsed::Step(Kind::Disconnect),
        "exit" => Parsed::Step(Kind::Exit(
            args.parse().map_err(|_| "@exit takes an exit status")?,
        )),
        _ => return Err(format!("unknown or malformed directive @{name}")),
    })
}
