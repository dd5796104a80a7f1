//! The Prisma schema language's tokens, syntax tree and parser; meaning comes later.

use std::iter::Peekable;
use std::str::Chars;

use super::schema_error;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    /// Kept as written: only native type arguments are ever read as numbers.
    Num(String),
    Punct(char),
    At,
    AtAt,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Tok,
    pub(super) line: usize,
}

pub(super) fn describe(token: Option<&Tok>) -> String {
    match token {
        None => "end of file".to_string(),
        Some(Tok::Ident(name)) => format!("`{name}`"),
        Some(Tok::Str(text)) => format!("string \"{text}\""),
        Some(Tok::Num(number)) => format!("number {number}"),
        Some(Tok::Punct(c)) => format!("`{c}`"),
        Some(Tok::At) => "`@`".to_string(),
        Some(Tok::AtAt) => "`@@`".to_string(),
    }
}

pub(super) struct Lexer<'a> {
    pub(super) chars: Peekable<Chars<'a>>,
    pub(super) line: usize,
}

impl Lexer<'_> {
    pub(super) fn tokenize(source: &str) -> Result<Vec<Token>> {
        let mut lexer = Lexer {
            chars: source.chars().peekable(),
            line: 1,
        };
        let mut tokens = Vec::new();
        while let Some(token) = lexer.token()? {
            tokens.push(token);
        }
        Ok(tokens)
    }

    pub(super) fn token(&mut self) -> Result<Option<Token>> {
        self.skip_trivia();
        let line = self.line;
        let Some(c) = self.chars.next() else {
            return Ok(None);
        };
        let kind = match c {
            '"' => Tok::Str(self.string(line)?),
            '@' if self.chars.next_if_eq(&'@').is_some() => Tok::AtAt,
            '@' => Tok::At,
            '{' | '}' | '(' | ')' | '[' | ']' | ',' | ':' | '=' | '?' | '.' => Tok::Punct(c),
            c if c.is_ascii_alphabetic() || c == '_' => {
                Tok::Ident(self.take_while(c, |c| c.is_ascii_alphanumeric() || c == '_'))
            }
            c if c.is_ascii_digit() || (c == '-' && self.peek_is(|c| c.is_ascii_digit())) => {
                Tok::Num(self.take_while(c, |c| c.is_ascii_digit() || c == '.'))
            }
            c => return Err(schema_error(line, format!("unexpected character `{c}`"))),
        };
        Ok(Some(Token { kind, line }))
    }

    pub(super) fn peek_is(&mut self, test: impl Fn(char) -> bool) -> bool {
        self.chars.peek().is_some_and(|&c| test(c))
    }

    /// Skips whitespace and comments; `///` doc comments are comments too.
    pub(super) fn skip_trivia(&mut self) {
        while let Some(&c) = self.chars.peek() {
            if c == '\n' {
                self.line += 1;
            } else if c == '/' && self.chars.clone().nth(1) == Some('/') {
                while self.chars.next_if(|&c| c != '\n').is_some() {}
                continue;
            } else if !c.is_whitespace() && c != '\u{feff}' {
                return;
            }
            self.chars.next();
        }
    }

    pub(super) fn take_while(&mut self, first: char, test: impl Fn(char) -> bool) -> String {
        let mut text = first.to_string();
        while let Some(c) = self.chars.next_if(|&c| test(c)) {
            text.push(c);
        }
        text
    }

    /// Reads a string body; Prisma strings never span lines, so a newline means it is unclosed.
    pub(super) fn string(&mut self, line: usize) -> Result<String> {
        let mut text = String::new();
        loop {
            match self.chars.next() {
                Some('"') => return Ok(text),
                Some('\\') => match self.chars.next() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some(c) if c != '\n' => text.push(c),
                    _ => break,
                },
                Some(c) if c != '\n' => text.push(c),
                _ => break,
            }
        }
        Err(schema_error(line, "unterminated string: expected `\"`"))
    }
}

/// An attribute or setting value; only the parts Eddy reads are kept.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Str(String),
    Num(String),
    Ident(String),
    /// A function call such as `now()` or `a(sort: Desc)`; its arguments never matter here.
    Call(String),
    Array(Vec<Expr>),
}

#[derive(Debug, Clone)]
pub(super) struct Arg {
    pub(super) name: Option<String>,
    pub(super) value: Expr,
}

#[derive(Debug, Clone)]
pub(super) struct Attribute {
    /// `@` or `@@`, for messages.
    pub(super) sigil: &'static str,
    /// The name without the sigil, e.g. `id` or `db.VarChar`.
    pub(super) name: String,
    pub(super) args: Vec<Arg>,
    pub(super) line: usize,
}

impl Attribute {
    /// The argument given by this name, or else the first argument when it is positional,
    /// as Prisma lets both `@@id([a])` and `@@id(fields: [a])` be written.
    pub(super) fn arg(&self, name: &str) -> Option<&Expr> {
        let named = self.args.iter().find(|a| a.name.as_deref() == Some(name));
        let positional = || self.args.first().filter(|a| a.name.is_none());
        named.or_else(positional).map(|a| &a.value)
    }

    pub(super) fn label(&self) -> String {
        format!("{}{}", self.sigil, self.name)
    }
}

pub(super) fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == name)
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TypeName {
    Named(String),
    /// `Unsupported("tsvector")`: a database type Prisma itself cannot represent.
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Arity {
    Required,
    Optional,
    List,
}

#[derive(Debug, Clone)]
pub(super) struct FieldDecl {
    pub(super) name: String,
    pub(super) ty: TypeName,
    pub(super) arity: Arity,
    pub(super) attrs: Vec<Attribute>,
    pub(super) line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BlockKind {
    Model,
    View,
    /// A composite `type` (MongoDB only).
    Type,
}

/// A `model`, `view` or `type` block.
#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) kind: BlockKind,
    pub(super) name: String,
    pub(super) fields: Vec<FieldDecl>,
    pub(super) attrs: Vec<Attribute>,
    pub(super) line: usize,
}

impl Block {
    pub(super) fn is_table(&self) -> bool {
        self.kind == BlockKind::Model && find_attr(&self.attrs, "ignore").is_none()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Setting {
    pub(super) key: String,
    pub(super) value: Expr,
    pub(super) line: usize,
}

/// A `datasource` or `generator` block.
#[derive(Debug, Clone)]
pub(super) struct ConfigBlock {
    pub(super) name: String,
    pub(super) settings: Vec<Setting>,
    pub(super) line: usize,
}

#[derive(Debug, Default)]
pub(super) struct Document {
    pub(super) datasources: Vec<ConfigBlock>,
    /// Enum names with their lines; values do not matter since enums become strings.
    pub(super) enums: Vec<(String, usize)>,
    pub(super) blocks: Vec<Block>,
}

/// Bounds recursion so that no input, however deeply nested, can overflow the stack.
pub(super) const MAX_NESTING: usize = 64;

pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
    pub(super) depth: usize,
}

impl Parser {
    pub(super) fn new(source: &str) -> Result<Self> {
        Ok(Parser {
            tokens: Lexer::tokenize(source)?,
            pos: 0,
            depth: 0,
        })
    }

    pub(super) fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    pub(super) fn peek_second(&self) -> Option<&Tok> {
        self.tokens.get(self.pos + 1).map(|t| &t.kind)
    }

    /// The line of the next token, or of the last one at the end of the file.
    pub(super) fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |t| t.line)
    }

    /// The line of the last consumed token.
    pub(super) fn previous_line(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(1, |t| t.line)
    }

    pub(super) fn bump(&mut self) -> Option<Tok> {
        let token = self.tokens.get(self.pos)?.kind.clone();
        self.pos += 1;
        Some(token)
    }

    pub(super) fn expected(&self, what: &str) -> Error {
        schema_error(
            self.line(),
            format!("expected {what}, found {}", describe(self.peek())),
        )
    }

    pub(super) fn eat(&mut self, punct: char) -> bool {
        let found = self.peek() == Some(&Tok::Punct(punct));
        if found {
            self.pos += 1;
        }
        found
    }

    pub(super) fn expect(&mut self, punct: char, what: &str) -> Result<()> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    pub(super) fn ident(&mut self, what: &str) -> Result<(String, usize)> {
        let line = self.line();
        match self.peek() {
            Some(Tok::Ident(name)) => {
                let name = name.clone();
                self.pos += 1;
                Ok((name, line))
            }
            _ => Err(self.expected(what)),
        }
    }

    pub(super) fn document(mut self) -> Result<Document> {
        let mut document = Document::default();
        while self.peek().is_some() {
            let what = "a block (`model`, `enum`, `datasource`, `generator`, `view` or `type`)";
            let (keyword, line) = self.ident(what)?;
            match keyword.as_str() {
                "datasource" => document.datasources.push(self.config_block(line)?),
                "generator" => {
                    self.config_block(line)?;
                }
                "enum" => document.enums.push(self.enumeration()?),
                "model" => document.blocks.push(self.block(BlockKind::Model, line)?),
                "view" => document.blocks.push(self.block(BlockKind::View, line)?),
                "type" => document.blocks.push(self.block(BlockKind::Type, line)?),
                other => {
                    return Err(schema_error(
                        line,
                        format!("expected {what}, found `{other}`"),
                    ));
                }
            }
        }
        Ok(document)
    }

    /// A `datasource` or `generator` block: `key = value` settings.
    pub(super) fn config_block(&mut self, line: usize) -> Result<ConfigBlock> {
        let (name, _) = self.ident("a block name")?;
        self.expect('{', &format!("`{{` after `{name}`"))?;
        let mut settings = Vec::new();
        while !self.eat('}') {
            let (key, line) = self.ident("a setting name or `}`")?;
            self.expect('=', &format!("`=` after `{key}`"))?;
            let value = self.expr()?;
            settings.push(Setting { key, value, line });
        }
        Ok(ConfigBlock {
            name,
            settings,
            line,
        })
    }

    pub(super) fn enumeration(&mut self) -> Result<(String, usize)> {
        let (name, line) = self.ident("an enum name")?;
        self.expect('{', &format!("`{{` after `{name}`"))?;
        while !self.eat('}') {
            if self.peek() == Some(&Tok::AtAt) {
                self.attribute()?;
                continue;
            }
            self.ident("an enum value, a block attribute (`@@`) or `}`")?;
            while self.peek() == Some(&Tok::At) {
                self.attribute()?;
            }
        }
        Ok((name, line))
    }

    pub(super) fn block(&mut self, kind: BlockKind, line: usize) -> Result<Block> {
        let (name, _) = self.ident("a name")?;
        self.expect('{', &format!("`{{` after `{name}`"))?;
        let mut fields = Vec::new();
        let mut attrs = Vec::new();
        while !self.eat('}') {
            if self.peek() == Some(&Tok::AtAt) {
                attrs.push(self.attribute()?);
            } else {
                fields.push(self.field()?);
            }
        }
        Ok(Block {
            kind,
            name,
            fields,
            attrs,
            line,
        })
    }

    /// A field: its name and type on one line, attributes after, and nothing else on the
    /// line (a field's attributes may only wrap inside their parentheses).
    pub(super) fn field(&mut self) -> Result<FieldDecl> {
        let (name, line) = self.ident("a field name, a block attribute (`@@`) or `}`")?;
        if self.line() != line {
            return Err(schema_error(
                line,
                format!("expected a type after field `{name}` on the same line"),
            ));
        }
        let ty = self.type_name(&name)?;
        let arity = self.arity()?;
        let mut attrs = Vec::new();
        while self.peek() == Some(&Tok::At) {
            attrs.push(self.attribute()?);
        }
        let ends_line = self.line() > self.previous_line();
        if !ends_line && !matches!(self.peek(), None | Some(Tok::Punct('}'))) {
            return Err(self.expected(&format!(
                "an attribute (`@`) or a new line after field `{name}`"
            )));
        }
        Ok(FieldDecl {
            name,
            ty,
            arity,
            attrs,
            line,
        })
    }

    pub(super) fn type_name(&mut self, field: &str) -> Result<TypeName> {
        let (name, _) = self.ident(&format!("a type for field `{field}`"))?;
        if name != "Unsupported" {
            return Ok(TypeName::Named(name));
        }
        self.expect('(', "`(` after `Unsupported`")?;
        let Some(Tok::Str(db_type)) = self.peek().cloned() else {
            return Err(self.expected("a string naming the database type"));
        };
        self.pos += 1;
        self.expect(')', "`)`")?;
        Ok(TypeName::Unsupported(db_type))
    }

    pub(super) fn arity(&mut self) -> Result<Arity> {
        if self.eat('?') {
            Ok(Arity::Optional)
        } else if self.eat('[') {
            self.expect(']', "`]` after `[`")?;
            Ok(Arity::List)
        } else {
            Ok(Arity::Required)
        }
    }

    /// `@name`, `@@name` or `@source.Name`, each with optional arguments.
    pub(super) fn attribute(&mut self) -> Result<Attribute> {
        let sigil = match self.bump() {
            Some(Tok::AtAt) => "@@",
            _ => "@",
        };
        let (mut name, line) = self.ident(&format!("an attribute name after `{sigil}`"))?;
        if self.eat('.') {
            let (native, _) = self.ident(&format!("a native type name after `{name}.`"))?;
            name = format!("{name}.{native}");
        }
        let args = if self.eat('(') {
            self.args()?
        } else {
            Vec::new()
        };
        Ok(Attribute {
            sigil,
            name,
            args,
            line,
        })
    }

    /// Arguments after an opening `(`, up to and including the closing `)`.
    pub(super) fn args(&mut self) -> Result<Vec<Arg>> {
        self.nest()?;
        let mut args = Vec::new();
        while !self.eat(')') {
            let named = matches!(self.peek(), Some(Tok::Ident(_)))
                && self.peek_second() == Some(&Tok::Punct(':'));
            let name = if named {
                let (name, _) = self.ident("an argument name")?;
                self.pos += 1;
                Some(name)
            } else {
                None
            };
            let value = self.expr()?;
            args.push(Arg { name, value });
            if !self.eat(',') && self.peek() != Some(&Tok::Punct(')')) {
                return Err(self.expected("`,` or `)`"));
            }
        }
        self.depth -= 1;
        Ok(args)
    }

    pub(super) fn expr(&mut self) -> Result<Expr> {
        let what = "a value (string, number, name, function call or list)";
        match self.peek().cloned() {
            Some(Tok::Str(text)) => {
                self.pos += 1;
                Ok(Expr::Str(text))
            }
            Some(Tok::Num(number)) => {
                self.pos += 1;
                Ok(Expr::Num(number))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if self.eat('(') {
                    self.args()?;
                    Ok(Expr::Call(name))
                } else {
                    Ok(Expr::Ident(name))
                }
            }
            Some(Tok::Punct('[')) => {
                self.pos += 1;
                self.array()
            }
            _ => Err(self.expected(what)),
        }
    }

    /// List items after an opening `[`, up to and including the closing `]`.
    pub(super) fn array(&mut self) -> Result<Expr> {
        self.nest()?;
        let mut items = Vec::new();
        while !self.eat(']') {
            items.push(self.expr()?);
            if !self.eat(',') && self.peek() != Some(&Tok::Punct(']')) {
                return Err(self.expected("`,` or `]`"));
            }
        }
        self.depth -= 1;
        Ok(Expr::Array(items))
    }

    pub(super) fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(schema_error(
                self.line(),
                format!("arguments are nested more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }
}
