//! Tensor rows to host vectors: what the builder stores (features, logits, CAMs) and what the
//! mask draw reads (CAMs).

use tch::{Device, Kind, Tensor};

use crate::error::{CounterfactualError, Result};

/// A [N, D] tensor (any float kind, any device) as N rows of D `f32`.
pub fn rows_f32(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let (n, d) = t
        .size2()
        .map_err(|e| CounterfactualError::Input(format!("expected a [N, D] tensor: {e}")))?;
    if d == 0 {
        return Ok(vec![Vec::new(); n as usize]);
    }
    let flat = Vec::<f32>::try_from(t.view([-1]))?;
    Ok(flat.chunks(d as usize).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_in_order() {
        let t = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.]).view([3, 2]);
        assert_eq!(
            rows_f32(&t).unwrap(),
            vec![vec![1., 2.], vec![3., 4.], vec![5., 6.]]
        );
        assert_eq!(
            rows_f32(&Tensor::zeros([0, 4], (Kind::Float, Device::Cpu))).unwrap(),
            Vec::<Vec<f32>>::new()
        );
        assert!(rows_f32(&Tensor::zeros([4], (Kind::Float, Device::Cpu))).is_err());
    }
}
