//! One frame: a `u32` big-endian payload length, then the postcard payload.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest payload accepted. A whole configuration is a few KiB; this leaves room for
/// certificates and journals while refusing a length that garbage happens to spell.
pub const MAX_FRAME: usize = 4 << 20;

/// Why a frame could not be read or written. Any of these ends the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("control frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("control frame cannot be decoded: {0}")]
    Decode(postcard::Error),
    #[error("control message cannot be encoded: {0}")]
    Encode(postcard::Error),
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub async fn read_frame<T: DeserializeOwned>(
    r: &mut (impl AsyncRead + Unpin),
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    postcard::from_bytes(&payload)
        .map(Some)
        .map_err(FrameError::Decode)
}

/// Writes one frame and flushes it.
pub async fn write_frame<T: Serialize>(
    w: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> Result<(), FrameError> {
    let payload = postcard::to_stdvec(message).map_err(FrameError::Encode)?;
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge(payload.len()))?;
    let mut bytes = Vec::with_capacity(4 + payload.len());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&payload);
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_eof_is_none() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame(&mut a, &("hello".to_owned(), 7u32))
            .await
            .unwrap();
        drop(a);
        let got: Option<(String, u32)> = read_frame(&mut b).await.unwrap();
        assert_eq!(got, Some(("hello".to_owned(), 7)));
        let end: Option<(String, u32)> = read_frame(&mut b).await.unwrap();
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn oversized_and_garbage_frames_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let got = read_frame::<String>(&mut b).await;
        assert!(matches!(got, Err(FrameError::TooLarge(n)) if n == u32::MAX as usize));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        assert!(matches!(
            read_frame::<String>(&mut b).await,
            Err(FrameError::Decode(_))
        ));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame::<String>(&mut b).await,
            Err(FrameError::Io(_))
        ));
    }
}
