//! The question a destructive command (compact's erasure, repair) asks before it changes
//! anything, and its rule: only a "y"/"yes" typed on a terminal confirms; without a terminal
//! nobody can answer, and the command needs `--yes`.

use anyhow::{bail, Result};
use std::io::{BufRead, Write};

/// Asks `question` on `prompt` and reads the answer from `input`. `interactive`: standard
/// input is a terminal.
///
/// # Errors
/// Without a terminal (the caller exits with the usage status); read and write errors.
pub fn confirm(
    question: &str,
    interactive: bool,
    input: &mut impl BufRead,
    prompt: &mut impl Write,
) -> Result<bool> {
    if !interactive {
        bail!("refusing without confirmation: standard input is not a terminal (pass --yes)");
    }
    write!(prompt, "{question} [y/N] ")?;
    prompt.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

#[cfg(test)]
mod tests {
    use super::confirm;

    fn answer(interactive: bool, typed: &str) -> Option<bool> {
        let mut prompt = Vec::new();
        confirm("Erase?", interactive, &mut typed.as_bytes(), &mut prompt).ok()
    }

    #[test]
    fn only_a_yes_typed_on_a_terminal_confirms() {
        assert_eq!(answer(true, "y\n"), Some(true));
        assert_eq!(answer(true, "yes\n"), Some(true));
        assert_eq!(answer(true, "\n"), Some(false));
        assert_eq!(answer(true, "n\n"), Some(false));
        assert_eq!(answer(true, "yess\n"), Some(false));
        assert_eq!(answer(true, ""), Some(false), "end of input is a no");
        assert_eq!(answer(false, "y\n"), None, "no terminal: refused, not read");
    }
}
