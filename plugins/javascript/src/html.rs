//! The parsed documents behind `k6/html`: a page parsed once by html5ever
//! (through `scraper`, the parser browsers' rules describe) and queried
//! with CSS selectors. JavaScript holds a document and lists of node
//! numbers; a node's number is its place in document order, so sorting a
//! list puts it in document order, as jQuery's (and k6's) results are.

use rquickjs::convert::List;
use rquickjs::{Class, Ctx, Exception};
use scraper::node::Node;
use scraper::{ElementRef, Html, Selector};
use std::collections::HashMap;

/// One parsed page. Freed with the JavaScript object holding it.
pub struct Doc {
    html: Html,
    /// Every node, in document order: a node's number is its index.
    order: Vec<ego_tree::NodeId>,
    number: HashMap<ego_tree::NodeId, u32>,
}

native_class!(Doc, "HtmlDocument");

type NodeRef<'a> = ego_tree::NodeRef<'a, Node>;

impl Doc {
    fn parse(src: &str) -> Doc {
        let html = Html::parse_document(src);
        let order: Vec<_> = html.tree.root().descendants().map(|n| n.id()).collect();
        let number = order
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        Doc {
            html,
            order,
            number,
        }
    }

    fn node(&self, n: u32) -> Option<NodeRef<'_>> {
        self.html.tree.get(*self.order.get(n as usize)?)
    }

    fn nodes<'a>(&'a self, ns: &'a [u32]) -> impl Iterator<Item = NodeRef<'a>> + 'a {
        ns.iter().filter_map(|n| self.node(*n))
    }

    fn element(&self, n: u32) -> Option<ElementRef<'_>> {
        self.node(n).and_then(ElementRef::wrap)
    }

    fn number(&self, node: NodeRef<'_>) -> u32 {
        self.number[&node.id()]
    }

    /// Numbers of `nodes`, sorted and without repeats.
    fn numbers<'a>(&self, nodes: impl Iterator<Item = NodeRef<'a>>) -> Vec<u32> {
        let mut ns: Vec<u32> = nodes.map(|n| self.number(n)).collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    }
}

fn selector(ctx: &Ctx<'_>, css: &str) -> rquickjs::Result<Selector> {
    Selector::parse(css).map_err(|e| {
        Exception::throw_syntax(ctx, &format!("k6/html: `{css}` is not a CSS selector: {e}"))
    })
}

/// `H.parse(src)`: the document, whose root is node 0.
pub fn parse(ctx: Ctx<'_>, src: String) -> rquickjs::Result<Class<'_, Doc>> {
    Class::instance(ctx, Doc::parse(&src))
}

/// `H.find(doc, nodes, css)`: the descendants of `nodes` that match.
pub fn find(
    ctx: Ctx<'_>,
    doc: Class<'_, Doc>,
    ns: Vec<u32>,
    css: String,
) -> rquickjs::Result<Vec<u32>> {
    let sel = selector(&ctx, &css)?;
    let d = doc.borrow();
    let found = d.nodes(&ns).flat_map(|n| {
        n.descendants()
            .skip(1)
            .filter_map(ElementRef::wrap)
            .filter(|e| sel.matches(e))
            .map(|e| *e)
    });
    Ok(d.numbers(found))
}

/// `H.filter(doc, nodes, css)`: the elements of `nodes` that match.
pub fn filter(
    ctx: Ctx<'_>,
    doc: Class<'_, Doc>,
    ns: Vec<u32>,
    css: String,
) -> rquickjs::Result<Vec<u32>> {
    let sel = selector(&ctx, &css)?;
    let d = doc.borrow();
    Ok(ns
        .into_iter()
        .filter(|n| d.element(*n).is_some_and(|e| sel.matches(&e)))
        .collect())
}

/// `H.walk(doc, nodes, how)`: the elements one step (or every step)
/// away in direction `how`, in document order. `contents` alone keeps
/// text and comments.
pub fn walk(
    ctx: Ctx<'_>,
    doc: Class<'_, Doc>,
    ns: Vec<u32>,
    how: String,
) -> rquickjs::Result<Vec<u32>> {
    let d = doc.borrow();
    let step: fn(NodeRef<'_>) -> Vec<NodeRef<'_>> = match how.as_str() {
        "children" => |n| n.children().collect(),
        "contents" => |n| n.children().collect(),
        "parent" => |n| n.parent().into_iter().collect(),
        "parents" => |n| n.ancestors().collect(),
        "next" => |n| next_element(n, |s| s.next_sibling()).into_iter().collect(),
        "prev" => |n| next_element(n, |s| s.prev_sibling()).into_iter().collect(),
        "nextAll" => |n| n.next_siblings().collect(),
        "prevAll" => |n| n.prev_siblings().collect(),
        "siblings" => |n| {
            n.parent()
                .map(|p| p.children().filter(|c| c.id() != n.id()).collect())
                .unwrap_or_default()
        },
        other => {
            return Err(Exception::throw_type(
                &ctx,
                &format!("k6/html: no walk `{other}`"),
            ));
        }
    };
    let keep_all = how == "contents";
    let reached = d
        .nodes(&ns)
        .flat_map(step)
        .filter(|n| keep_all || n.value().is_element());
    Ok(d.numbers(reached))
}

fn next_element<'a>(
    n: NodeRef<'a>,
    step: fn(&NodeRef<'a>) -> Option<NodeRef<'a>>,
) -> Option<NodeRef<'a>> {
    let mut at = step(&n)?;
    while !at.value().is_element() {
        at = step(&at)?;
    }
    Some(at)
}

/// `H.text(doc, nodes)`: the text of every node and its descendants.
pub fn text(doc: Class<'_, Doc>, ns: Vec<u32>) -> String {
    let d = doc.borrow();
    let mut out = String::new();
    for n in d.nodes(&ns) {
        for m in n.descendants() {
            if let Node::Text(t) = m.value() {
                out.push_str(t);
            }
        }
    }
    out
}

/// `H.inner(doc, node)`: the node's inner HTML (a text node's text).
pub fn inner(doc: Class<'_, Doc>, n: u32) -> Option<String> {
    let d = doc.borrow();
    let node = d.node(n)?;
    match ElementRef::wrap(node) {
        Some(e) => Some(e.inner_html()),
        None if node.value().is_document() => Some(d.html.html()),
        None => Some(text_of(node)),
    }
}

/// `H.outer(doc, node)`: the element with its own tags.
pub fn outer(doc: Class<'_, Doc>, n: u32) -> Option<String> {
    let d = doc.borrow();
    let node = d.node(n)?;
    Some(ElementRef::wrap(node).map_or_else(|| text_of(node), |e| e.html()))
}

fn text_of(node: NodeRef<'_>) -> String {
    match node.value() {
        Node::Text(t) => t.to_string(),
        Node::Comment(c) => c.to_string(),
        _ => String::new(),
    }
}

/// `H.attr(doc, node, name)`: the attribute's value, or undefined.
pub fn attr(doc: Class<'_, Doc>, n: u32, name: String) -> Option<String> {
    doc.borrow().element(n)?.attr(&name).map(str::to_owned)
}

/// `H.attrs(doc, node)`: `[name, value, ...]` in the source's order.
pub fn attrs(doc: Class<'_, Doc>, n: u32) -> Vec<String> {
    let d = doc.borrow();
    let Some(e) = d.element(n) else {
        return Vec::new();
    };
    e.value()
        .attrs()
        .flat_map(|(k, v)| [k.to_owned(), v.to_owned()])
        .collect()
}

/// `H.kind(doc, node)`: `[nodeType, nodeName]` as the DOM numbers and
/// names them (1 element, 3 text, 8 comment, 9 document, 10 doctype).
pub fn kind(doc: Class<'_, Doc>, n: u32) -> List<(u32, String)> {
    List(kind_of(&doc.borrow(), n))
}

fn kind_of(d: &Doc, n: u32) -> (u32, String) {
    let Some(node) = d.node(n) else {
        return (0, String::new());
    };
    match node.value() {
        Node::Element(e) => (1, e.name().to_owned()),
        Node::Text(_) => (3, "#text".into()),
        Node::Comment(_) => (8, "#comment".into()),
        Node::Document | Node::Fragment => (9, "#document".into()),
        Node::Doctype(d) => (10, d.name().to_owned()),
        Node::ProcessingInstruction(p) => (7, p.target.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_document_order() {
        let d = Doc::parse("<p id=a>x<b>y</b></p><p id=b>z</p>");
        let ids: Vec<_> = (0..d.order.len() as u32)
            .filter_map(|n| d.element(n))
            .filter_map(|e| e.value().id().map(str::to_owned))
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
