//! Bounded reads of HTTP response bodies, shared by the registry adapter ([`crate::registry`])
//! and cloud login ([`crate::cloud`]): a body is read chunk by chunk and given up as soon as it
//! would pass its bound, so that a hostile or broken server cannot make us hold more than we
//! chose to. Each caller turns a [`BodyError`] into its own error with its own wording.

use reqwest::Response;

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// The body is larger than the bytes left in the budget.
    TooLarge,
    /// The transport failed while the body was read.
    Read(reqwest::Error),
}

/// Reads all of `resp`'s body, charging its bytes to `budget` (what is left of the caller's
/// bound, decreased by what was read); past it, [`BodyError::TooLarge`].
///
/// # Errors
///
/// [`BodyError::TooLarge`] past the budget, [`BodyError::Read`] when the transport fails.
pub async fn read_bounded(mut resp: Response, budget: &mut usize) -> Result<Vec<u8>, BodyError> {
    // Sized once from the announced length (never beyond the budget): growing by doubling
    // would briefly hold 1.5x.
    let announced = usize::try_from(resp.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(announced.min(*budget));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if chunk.len() > *budget {
            return Err(BodyError::TooLarge);
        }
        *budget -= chunk.len();
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// [`read_bounded`] with a budget of `limit` bytes for this body alone.
///
/// # Errors
///
/// As [`read_bounded`].
pub async fn read_limited(resp: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut budget = limit;
    read_bounded(resp, &mut budget).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response whose body arrives in `chunks`.
    fn response(chunks: &[&'static [u8]]) -> Response {
        let chunks: Vec<Result<&'static [u8], std::io::Error>> =
            chunks.iter().map(|c| Ok(*c)).collect();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        Response::from(http::Response::new(body))
    }

    #[tokio::test]
    async fn a_body_within_its_bound_is_read_whole() {
        let body = read_limited(response(&[b"abc", b"def"]), 6).await.unwrap();
        assert_eq!(body, b"abcdef");
    }

    #[tokio::test]
    async fn a_body_past_its_bound_is_given_up() {
        let err = read_limited(response(&[b"abc", b"defg"]), 6)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge), "{err:?}");
    }

    #[tokio::test]
    async fn a_shared_budget_is_charged_across_bodies() {
        let mut budget = 8;
        read_bounded(response(&[b"abcde"]), &mut budget)
            .await
            .unwrap();
        assert_eq!(budget, 3);
        let err = read_bounded(response(&[b"abcd"]), &mut budget)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge), "{err:?}");
    }
}
