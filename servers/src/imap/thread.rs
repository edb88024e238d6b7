//! THREAD's algorithms (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES, and the
//! `* THREAD` response.
//!
//! Pure: the THREAD command (`command/thread.rs`) reads each searched message's header
//! into a [`Message`] and hands them over in mailbox order. Nothing here walks the
//! messages once per message or recurses as deep as a thread goes, since a mailbox
//! can be built to make either take hours or overflow the stack:
//!
//! - message IDs are looked up in a map;
//! - REFERENCES must never link a message under its own descendant (step 1). Whether
//!   it would is a question about a forest whose links also get cut (step 1B), asked
//!   up to three times per message; a walk up the parents answers it in as many steps
//!   as the thread is deep, which a crafted mailbox makes quadratic (tens of billions
//!   of steps for 100,000 messages). A link-cut tree (`Forest`) answers in
//!   logarithmic time;
//! - pruning, sorting and writing the threads out use explicit stacks.

use std::collections::HashMap;

/// What threading needs of one searched message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What the response names it by: its sequence number, or its UID for UID THREAD.
    pub number: u32,
    /// The sent date (RFC 5256 §2.2).
    pub sent: i64,
    /// The base subject, casemapped (so equal subjects are equal strings).
    pub subject: String,
    /// Whether taking the base subject removed a reply or forward mark.
    pub reply: bool,
}

/// Threads as a tree: every node a message or a dummy (a message that is referred to
/// but not among those searched), with its children in order.
#[derive(Debug, Default)]
pub struct Threads {
    /// The message of each node; `None` for a dummy.
    message: Vec<Option<Message>>,
    children: Vec<Vec<usize>>,
    /// The threads, in order.
    roots: Vec<usize>,
}

impl Threads {
    fn node(&mut self, message: Option<Message>) -> usize {
        self.message.push(message);
        self.children.push(Vec::new());
        self.message.len() - 1
    }

    /// A node's sort key (RFC 5256 §2.2: the sent date, then mailbox order); a dummy's
    /// is its first child's.
    fn key(&self, node: usize) -> (i64, u32) {
        let mut node = node;
        loop {
            match (&self.message[node], self.children[node].first()) {
                (Some(m), _) => return (m.sent, m.number),
                (None, Some(&first)) => node = first,
                (None, None) => return (i64::MIN, 0),
            }
        }
    }

    /// The `* THREAD` response (RFC 5256 §4): `(2)(3 6 (4 23)(44 7 96))`.
    pub fn encode(&self) -> Vec<u8> {
        enum Work {
            Text(&'static str),
            Node(usize),
        }
        let mut out = String::from("* THREAD");
        if !self.roots.is_empty() {
            out.push(' ');
        }
        let mut stack: Vec<Work> = Vec::new();
        let nested = |stack: &mut Vec<Work>, children: &[usize]| {
            for &child in children.iter().rev() {
                stack.extend([Work::Text(")"), Work::Node(child), Work::Text("(")]);
            }
        };
        for &root in &self.roots {
            stack.extend([Work::Text(")"), Work::Node(root), Work::Text("(")]);
            while let Some(work) = stack.pop() {
                let node = match work {
                    Work::Text(text) => {
                        out.push_str(text);
                        continue;
                    }
                    Work::Node(node) => node,
                };
                let Some(message) = &self.message[node] else {
                    // A dummy (only ever a thread's top, with two or more children):
                    // its children are the thread's sub-threads.
                    nested(&mut stack, &self.children[node]);
                    continue;
                };
                // A run of single children is written as one list: `3 6`.
                out.push_str(&message.number.to_string());
                let mut at = node;
                while let [only] = self.children[at][..]
                    && let Some(child) = &self.message[only]
                {
                    out.push(' ');
                    out.push_str(&child.number.to_string());
                    at = only;
                }
                if !self.children[at].is_empty() {
                    out.push(' ');
                    nested(&mut stack, &self.children[at]);
                }
            }
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Sorts every set of siblings by sent date (RFC 5256 §3 REFERENCES step 6, and
    /// ORDEREDSUBJECT's threads): children first, so that a dummy's key, its first
    /// child's, is known when the threads are sorted.
    fn sort_siblings(&mut self) {
        for node in 0..self.children.len() {
            let mut list = std::mem::take(&mut self.children[node]);
            list.sort_by_key(|&n| self.key(n));
            self.children[node] = list;
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by_key(|&n| self.key(n));
        self.roots = roots;
    }
}

/// ORDEREDSUBJECT: messages sorted by base subject, then sent date; one thread per
/// subject, whose first message has all the others as children; the threads in the
/// order of their first messages' sent dates. `messages` come in mailbox order.
pub fn ordered_subject(messages: Vec<Message>) -> Threads {
    let mut threads = Threads::default();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    // Stable: equal dates stay in mailbox order.
    order.sort_by(|&a, &b| {
        let (a, b) = (&messages[a], &messages[b]);
        (&a.subject, a.sent).cmp(&(&b.subject, b.sent))
    });
    let mut messages: Vec<Option<Message>> = messages.into_iter().map(Some).collect();
    let mut current: Option<(String, usize)> = None;
    for index in order {
        let message = messages[index].take().expect("each once");
        let subject = message.subject.clone();
        let node = threads.node(Some(message));
        match &current {
            Some((s, first)) if *s == subject => threads.children[*first].push(node),
            _ => {
                threads.roots.push(node);
                current = Some((subject, node));
            }
        }
    }
    threads.sort_siblings();
    threads
}

/// REFERENCES, fed one message at a time in mailbox order ([`References::add`], step
/// 1), then finished ([`References::threads`], steps 2 to 6).
#[derive(Debug, Default)]
pub struct References {
    /// Per container: its message (`None` for a dummy), its parent.
    message: Vec<Option<Message>>,
    parent: Vec<Option<usize>>,
    /// The container of each message ID seen (as a Message-ID or a reference).
    ids: HashMap<String, usize>,
    /// The same links, for "is it a descendant?" in logarithmic time.
    forest: Forest,
}

impl References {
    pub fn new() -> References {
        References::default()
    }

    fn container(&mut self, message: Option<Message>) -> usize {
        self.message.push(message);
        self.parent.push(None);
        self.forest.add();
        self.message.len() - 1
    }

    /// The container of a referenced message ID: the one it has, or a new dummy.
    fn referenced(&mut self, id: &str) -> usize {
        match self.ids.get(id) {
            Some(&container) => container,
            None => {
                let container = self.container(None);
                self.ids.insert(id.to_string(), container);
                container
            }
        }
    }

    /// Makes `parent` the parent of `child`, which has none, unless `parent` is
    /// `child` or below it (RFC 5256: no link may make a loop).
    fn link(&mut self, parent: usize, child: usize) -> bool {
        if self.forest.root(parent) == child {
            return false;
        }
        self.parent[child] = Some(parent);
        self.forest.link(child, parent);
        true
    }

    /// Step 1 for the next message in mailbox order, with its normalized Message-ID
    /// and references (the References header's IDs, or else the first of
    /// In-Reply-To's).
    pub fn add(&mut self, message: Message, id: Option<&str>, references: &[String]) {
        // A message without an ID, or with one an earlier message has, gets one of
        // its own that nothing refers to.
        let this = match id.map(|id| (id, self.ids.get(id).copied())) {
            Some((_, Some(c))) if self.message[c].is_none() => {
                self.message[c] = Some(message);
                c
            }
            Some((id, None)) => {
                let c = self.container(Some(message));
                self.ids.insert(id.to_string(), c);
                c
            }
            _ => self.container(Some(message)),
        };
        // (A) Each reference the parent of the next, where the next has no parent yet.
        let mut previous: Option<usize> = None;
        for reference in references {
            let container = self.referenced(reference);
            if let Some(parent) = previous
                && parent != container
                && self.parent[container].is_none()
            {
                self.link(parent, container);
            }
            previous = Some(container);
        }
        // (B) The last reference is the message's parent, whatever it had before.
        if self.parent[this].take().is_some() {
            self.forest.cut(this);
        }
        if let Some(parent) = previous {
            self.link(parent, this);
        }
    }

    /// Steps 2 to 6: the threads.
    pub fn threads(self) -> Threads {
        let References {
            message, parent, ..
        } = self;
        let count = message.len();
        let mut children = vec![Vec::new(); count];
        let mut roots = Vec::new();
        for (node, parent) in parent.iter().enumerate() {
            match parent {
                Some(p) => children[*p].push(node),
                None => roots.push(node),
            }
        }
        let mut threads = Threads {
            message,
            children: vec![Vec::new(); count],
            roots: Vec::new(),
        };
        // (2), (3) Under one root; dummies pruned.
        threads.roots = prune(&threads.message, &children, &roots, &mut threads.children);
        // (4) The threads by sent date (a dummy by its first child's).
        threads.sort_siblings();
        // (5) Threads with the same base subject gathered.
        gather_subjects(&mut threads);
        // (6) Every set of siblings by sent date.
        threads.sort_siblings();
        threads
    }
}

/// Step 3 for the trees under `roots`: a dummy without children goes; one with
/// children gives way to them, except at the top where it stays when it has more than
/// one. The pruned children go into `pruned`; the new top level is returned.
fn prune(
    message: &[Option<Message>],
    children: &[Vec<usize>],
    roots: &[usize],
    pruned: &mut [Vec<usize>],
) -> Vec<usize> {
    // What takes each node's place among its siblings once it is pruned.
    let mut replaced: Vec<Vec<usize>> = vec![Vec::new(); message.len()];
    let mut top = Vec::new();
    for &root in roots {
        // Depth first, children before their parent.
        let mut stack = vec![(root, false)];
        while let Some((node, visited)) = stack.pop() {
            if !visited {
                stack.push((node, true));
                stack.extend(children[node].iter().map(|&c| (c, false)));
                continue;
            }
            let kids: Vec<usize> = children[node]
                .iter()
                .flat_map(|&c| std::mem::take(&mut replaced[c]))
                .collect();
            let stays = message[node].is_some() || (node == root && kids.len() > 1);
            replaced[node] = if stays {
                pruned[node] = kids;
                vec![node]
            } else {
                kids
            };
        }
        top.append(&mut replaced[root]);
    }
    top
}

/// Step 5: top-level threads whose subject (a dummy's: its first child's) is the same
/// are merged, as RFC 5256 §3 says, keeping replies under the original.
fn gather_subjects(threads: &mut Threads) {
    let subject_of = |threads: &Threads, node: usize| -> Option<String> {
        let node = match &threads.message[node] {
            Some(_) => node,
            None => *threads.children[node].first()?,
        };
        let m = threads.message[node].as_ref()?;
        (!m.subject.is_empty()).then(|| m.subject.clone())
    };
    let is_dummy = |threads: &Threads, node: usize| threads.message[node].is_none();
    let is_reply =
        |threads: &Threads, node: usize| threads.message[node].as_ref().is_some_and(|m| m.reply);
    // (B) One thread per subject: a dummy if there is one, else one that is not a reply
    // if there is one, else the first.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &node in &threads.roots {
        let Some(subject) = subject_of(threads, node) else {
            continue;
        };
        match table.get(&subject) {
            None => {
                table.insert(subject, node);
            }
            Some(&held) => {
                let replace = !is_dummy(threads, held)
                    && (is_dummy(threads, node)
                        || (is_reply(threads, held) && !is_reply(threads, node)));
                if replace {
                    table.insert(subject, node);
                }
            }
        }
    }
    // (C) The others merged into it. Top-level slots are emptied (`None`) or taken over
    // by a new dummy in place.
    let roots = std::mem::take(&mut threads.roots);
    let mut slot: HashMap<usize, usize> = roots.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut top: Vec<Option<usize>> = roots.iter().copied().map(Some).collect();
    for &node in &roots {
        let Some(subject) = subject_of(threads, node) else {
            continue;
        };
        let held = table[&subject];
        if held == node {
            continue;
        }
        let at = slot[&node];
        top[at] = None;
        match (is_dummy(threads, held), is_dummy(threads, node)) {
            (true, true) => {
                let moved = std::mem::take(&mut threads.children[node]);
                threads.children[held].extend(moved);
            }
            (true, false) => threads.children[held].push(node),
            (false, _) if is_reply(threads, node) && !is_reply(threads, held) => {
                threads.children[held].push(node);
            }
            _ => {
                let dummy = threads.node(None);
                threads.children[dummy] = vec![held, node];
                let held_at = slot[&held];
                top[held_at] = Some(dummy);
                slot.insert(dummy, held_at);
                table.insert(subject, dummy);
            }
        }
    }
    threads.roots = top.into_iter().flatten().collect();
}

/// A link-cut tree over the containers (Sleator and Tarjan): the same forest as the
/// parent links, kept so that the root of any node's tree is found in amortized
/// logarithmic time however deep the tree, while links are made and cut.
///
/// Each node sits in a splay tree of its preferred path, ordered by depth; a splay
/// tree's root points to the parent of its path's top (a path-parent link).
#[derive(Debug, Default)]
struct Forest {
    /// Splay-tree children, `[shallower, deeper]`.
    child: Vec<[usize; 2]>,
    /// Splay-tree parent, or for a splay tree's root its path-parent.
    up: Vec<usize>,
}

const NONE: usize = usize::MAX;

impl Forest {
    fn add(&mut self) {
        self.child.push([NONE, NONE]);
        self.up.push(NONE);
    }

    /// Whether `x` is the root of its splay tree.
    fn is_splay_root(&self, x: usize) -> bool {
        let up = self.up[x];
        up == NONE || (self.child[up][0] != x && self.child[up][1] != x)
    }

    fn rotate(&mut self, x: usize) {
        let y = self.up[x];
        let z = self.up[y];
        let side = usize::from(self.child[y][1] == x);
        if !self.is_splay_root(y) {
            let y_side = usize::from(self.child[z][1] == y);
            self.child[z][y_side] = x;
        }
        self.up[x] = z;
        let moved = self.child[x][1 - side];
        self.child[y][side] = moved;
        if moved != NONE {
            self.up[moved] = y;
        }
        self.child[x][1 - side] = y;
        self.up[y] = x;
    }

    fn splay(&mut self, x: usize) {
        while !self.is_splay_root(x) {
            let y = self.up[x];
            if !self.is_splay_root(y) {
                let z = self.up[y];
                let zig_zig = (self.child[z][0] == y) == (self.child[y][0] == x);
                self.rotate(if zig_zig { y } else { x });
            }
            self.rotate(x);
        }
    }

    /// Makes the path from `x`'s root to `x` preferred, `x` the root of its splay tree.
    fn access(&mut self, x: usize) {
        let mut below = NONE;
        let mut at = x;
        while at != NONE {
            self.splay(at);
            self.child[at][1] = below;
            below = at;
            at = self.up[at];
        }
        self.splay(x);
    }

    /// The root of `x`'s tree.
    fn root(&mut self, x: usize) -> usize {
        self.access(x);
        let mut top = x;
        while self.child[top][0] != NONE {
            top = self.child[top][0];
        }
        self.splay(top);
        top
    }

    /// Hangs `child`, the root of its tree, under `parent`.
    fn link(&mut self, child: usize, parent: usize) {
        self.access(child);
        self.up[child] = parent;
    }

    /// Takes `x` (and what is below it) off its parent.
    fn cut(&mut self, x: usize) {
        self.access(x);
        let above = self.child[x][0];
        if above != NONE {
            self.up[above] = NONE;
            self.child[x][0] = NONE;
        }
    }
}

#[cfg(test)]
mod tests;
