//! The control protocol: one JSON object per line in each direction.
//!
//! Requests (`cmd` selects the command; unknown commands and fields are
//! refused with an error reply, never a crash):
//!
//! ```text
//! {"cmd":"partition","groups":[[1,2],[3]]}   replace partitions (see topology.rs)
//! {"cmd":"isolate","node":3}                 also block all links of node 3
//! {"cmd":"block","from":1,"to":2}            block one directed link
//! {"cmd":"unblock","from":1,"to":2}
//! {"cmd":"heal"}                             remove all partitions
//! {"cmd":"link","from":1,"to":2,"drop":0.2,"delay_ms":5,"jitter_ms":10,
//!  "dup":0.01,"reorder":0.05,"hold_ms":50,
//!  "corrupt":0.01,"replay":0.01}             replace one link's fault plan
//! {"cmd":"links", ...same fault fields...}   replace every link's plan
//! {"cmd":"reset"}                            no partitions, no faults
//! {"cmd":"stats"}                            counters per link and port
//! {"cmd":"inject","port":2,"frame_hex":"ffff..."}  frame as if from port 2
//! {"cmd":"status"}                           nodes, seed, socket paths
//! {"cmd":"shutdown"}                         stop the fabric
//! ```
//!
//! Replies: `{"ok":true, ...}` or `{"ok":false,"error":"..."}`.

use continuum_base::NodeId;
use serde::{Deserialize, Serialize};

use crate::ethernet::MAX_FRAME_BYTES;
use crate::faults::LinkFaults;

/// Longest request line accepted (an `inject` of the largest frame in hex
/// plus framing); longer lines get an error and the connection is closed.
pub const MAX_CONTROL_LINE_BYTES: usize = 2 * MAX_FRAME_BYTES + 1024;

/// A control request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Partition {
        groups: Vec<Vec<NodeId>>,
    },
    Isolate {
        node: NodeId,
    },
    Block {
        from: NodeId,
        to: NodeId,
    },
    Unblock {
        from: NodeId,
        to: NodeId,
    },
    Heal,
    Link {
        from: NodeId,
        to: NodeId,
        #[serde(default)]
        drop: f64,
        #[serde(default)]
        delay_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
        #[serde(default)]
        dup: f64,
        #[serde(default)]
        reorder: f64,
        #[serde(default)]
        hold_ms: u64,
        #[serde(default)]
        corrupt: f64,
        #[serde(default)]
        replay: f64,
    },
    Links {
        #[serde(default)]
        drop: f64,
        #[serde(default)]
        delay_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
        #[serde(default)]
        dup: f64,
        #[serde(default)]
        reorder: f64,
        #[serde(default)]
        hold_ms: u64,
        #[serde(default)]
        corrupt: f64,
        #[serde(default)]
        replay: f64,
    },
    Reset,
    Stats,
    Inject {
        port: NodeId,
        frame_hex: String,
    },
    Status,
    Shutdown,
}

impl Request {
    /// A `link` request setting `faults` on `from → to`.
    pub fn link(from: NodeId, to: NodeId, faults: &LinkFaults) -> Request {
        Request::Link {
            from,
            to,
            drop: faults.drop,
            delay_ms: faults.delay_ms,
            jitter_ms: faults.jitter_ms,
            dup: faults.dup,
            reorder: faults.reorder,
            hold_ms: faults.hold_ms,
            corrupt: faults.corrupt,
            replay: faults.replay,
        }
    }

    /// A `links` request setting `faults` on every link.
    pub fn links(faults: &LinkFaults) -> Request {
        Request::Links {
            drop: faults.drop,
            delay_ms: faults.delay_ms,
            jitter_ms: faults.jitter_ms,
            dup: faults.dup,
            reorder: faults.reorder,
            hold_ms: faults.hold_ms,
            corrupt: faults.corrupt,
            replay: faults.replay,
        }
    }

    /// The fault plan a `link` or `links` request carries (the inverse of
    /// [`Request::link`] and [`Request::links`]).
    pub fn faults(&self) -> Option<LinkFaults> {
        match *self {
            Request::Link {
                drop,
                delay_ms,
                jitter_ms,
                dup,
                reorder,
                hold_ms,
                corrupt,
                replay,
                ..
            }
            | Request::Links {
                drop,
                delay_ms,
                jitter_ms,
                dup,
                reorder,
                hold_ms,
                corrupt,
                replay,
            } => Some(LinkFaults {
                drop,
                delay_ms,
                jitter_ms,
                dup,
                reorder,
                hold_ms,
                corrupt,
                replay,
            }),
            _ => None,
        }
    }

    /// An `inject` request for `frame` on `port`.
    pub fn inject(port: NodeId, frame: &[u8]) -> Request {
        Request::Inject {
            port,
            frame_hex: encode_hex(frame),
        }
    }

    /// Parses one request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        serde_json::from_str(line).map_err(|e| format!("bad request: {e}"))
    }
}

/// Each link's current plan, from a `stats` reply's `stats` object: lets a
/// tool change one fault field of a link and keep the others.
pub fn link_plans(stats: &serde_json::Value) -> Result<Vec<(NodeId, NodeId, LinkFaults)>, String> {
    let links = stats["links"]
        .as_array()
        .ok_or("the fabric's stats have no links")?;
    links
        .iter()
        .map(|link| {
            let end = |name: &str| {
                link[name]
                    .as_u64()
                    .filter(|&n| n >= 1)
                    .ok_or(format!("a link in the fabric's stats has no {name}"))
            };
            let faults = serde_json::from_value(link["faults"].clone())
                .map_err(|e| format!("a link's plan in the fabric's stats: {e}"))?;
            Ok((end("from")?, end("to")?, faults))
        })
        .collect()
}

/// Changes one aspect of the plan of every link `select` accepts, keeping
/// the rest of each plan: reads the plans with `stats`, applies `edit`, sets
/// each changed link with `link`. `request` sends one request (a control
/// socket or an in-process handle). Returns how many links it set.
pub fn edit_links(
    mut request: impl FnMut(&Request) -> Result<serde_json::Value, String>,
    select: impl Fn(NodeId, NodeId) -> bool,
    edit: impl Fn(&mut LinkFaults),
) -> Result<usize, String> {
    let mut reply = request(&Request::Stats)?;
    let mut set = 0;
    for (from, to, mut faults) in link_plans(&reply["stats"].take())? {
        if select(from, to) {
            edit(&mut faults);
            request(&Request::link(from, to, &faults))?;
            set += 1;
        }
    }
    Ok(set)
}

/// Lower-case hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (either case, no separators) of at most [`MAX_FRAME_BYTES`].
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("frame_hex has an odd number of digits".to_string());
    }
    if text.len() / 2 > MAX_FRAME_BYTES {
        return Err(format!("frame longer than {MAX_FRAME_BYTES} bytes"));
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("frame_hex has a non-hex character {:?}", c as char)),
        }
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_explain() {
        assert_eq!(
            Request::parse(r#"{"cmd":"partition","groups":[[1,2],[3]]}"#).unwrap(),
            Request::Partition {
                groups: vec![vec![1, 2], vec![3]]
            }
        );
        let link = Request::parse(r#"{"cmd":"link","from":1,"to":2,"drop":0.2}"#).unwrap();
        assert_eq!(
            link,
            Request::link(
                1,
                2,
                &LinkFaults {
                    drop: 0.2,
                    ..LinkFaults::default()
                }
            )
        );
        assert!(Request::parse(r#"{"cmd":"link","from":1,"to":2,"dorp":0.2}"#).is_err());
        assert!(Request::parse(r#"{"cmd":"explode"}"#).is_err());
        assert!(Request::parse(r#"{"cmd":"isolate","node":-1}"#).is_err());
        assert!(Request::parse("not json").is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic(line in ".{0,200}") {
            let _ = Request::parse(&line);
            let _ = decode_hex(&line);
        }
    }

    #[test]
    fn link_plans_read_back_what_stats_report() {
        let mut switch = crate::Switch::new(3, 1).unwrap();
        let plan = LinkFaults {
            delay_ms: 40,
            replay: 0.5,
            ..LinkFaults::default()
        };
        switch.set_link(2, 3, plan.clone()).unwrap();
        let stats = serde_json::to_value(switch.stats()).unwrap();
        let plans = link_plans(&stats).unwrap();
        assert_eq!(plans.len(), 6);
        assert!(plans.contains(&(2, 3, plan)));
        assert!(plans.contains(&(3, 2, LinkFaults::default())));
        assert!(link_plans(&serde_json::json!({})).is_err());
    }

    #[test]
    fn edit_links_changes_one_field_and_keeps_the_others() {
        let switch = std::cell::RefCell::new(crate::Switch::new(3, 1).unwrap());
        let request = |r: &Request| -> Result<serde_json::Value, String> {
            let mut s = switch.borrow_mut();
            match r {
                Request::Stats => Ok(serde_json::json!({"stats": s.stats()})),
                Request::Link { from, to, .. } => {
                    s.set_link(*from, *to, r.faults().expect("a link request"))?;
                    Ok(serde_json::json!({"ok": true}))
                }
                other => Err(format!("unexpected {other:?}")),
            }
        };
        assert_eq!(
            edit_links(request, |_, _| true, |f| f.drop = 0.1).unwrap(),
            6
        );
        assert_eq!(
            edit_links(request, |a, b| (a, b) == (1, 2), |f| f.delay_ms = 30).unwrap(),
            1
        );
        let plans = link_plans(&serde_json::to_value(switch.borrow().stats()).unwrap()).unwrap();
        let both = LinkFaults {
            drop: 0.1,
            delay_ms: 30,
            ..LinkFaults::default()
        };
        let loss = LinkFaults {
            drop: 0.1,
            ..LinkFaults::default()
        };
        assert!(plans.contains(&(1, 2, both)));
        assert!(plans.contains(&(2, 1, loss)));
        let refuse = |_: &Request| -> Result<serde_json::Value, String> { Err("down".into()) };
        assert!(edit_links(refuse, |_, _| true, |_| {}).is_err());
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(decode_hex(&encode_hex(&bytes)).unwrap(), bytes);
        assert_eq!(decode_hex("ABcd").unwrap(), [0xab, 0xcd]);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
    }
}
