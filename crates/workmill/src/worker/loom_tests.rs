//! Loom model checks of `Control`: a paused loop always wakes for a resume or a stop, and a stop is final.

use loom::sync::Arc;
use loom::thread;

use super::{Control, Mode};

#[test]
fn loom_resume_wakes_a_paused_loop() {
    loom::model(|| {
        let control = Arc::new(Control::new(Mode::Pause));
        let paused = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.wait_while_paused())
        };
        control.set(Mode::Run);
        assert_eq!(paused.join().unwrap(), Mode::Run);
    });
}

#[test]
fn loom_stop_wakes_a_paused_loop_and_wins_over_a_racing_resume() {
    loom::model(|| {
        let control = Arc::new(Control::new(Mode::Pause));
        let paused = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.wait_while_paused())
        };
        let resumer = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.set(Mode::Run))
        };
        control.set(Mode::Stop);
        resumer.join().unwrap();
        let seen = paused.join().unwrap();
        assert!(seen == Mode::Run || seen == Mode::Stop);
        assert_eq!(control.mode(), Mode::Stop, "a stop is final");
    });
}
