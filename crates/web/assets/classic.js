// Classic UI behaviour: the TLS boxes of SSL Configuration keep one contiguous range (a box
// that would break it is disabled as the user clicks), the "?" help, and the Verify preview.
"use strict";

// The boxes of one service, TLS v1.3 first (menu order).
function tlsBoxes(fieldset) {
  return Array.from(fieldset.querySelectorAll("input[type=checkbox][data-version]"))
    .sort((a, b) => Number(a.dataset.version) - Number(b.dataset.version));
}

// Same rule as the server's ProtocolRange::can_toggle: an unticked box may be ticked next to
// either end of the range; a ticked one unticked only at an end, never the last one.
function updateBoxes(fieldset) {
  const boxes = tlsBoxes(fieldset);
  const on = boxes.map((b) => b.checked);
  const first = on.indexOf(true);
  const last = on.lastIndexOf(true);
  boxes.forEach((box, i) => {
    let allowed;
    if (first < 0) {
      allowed = true;
    } else if (on[i]) {
      allowed = first !== last && (i === first || i === last);
    } else {
      allowed = i === first - 1 || i === last + 1;
    }
    box.disabled = !allowed;
  });
}

function setUpSslForm(form) {
  const services = Array.from(form.querySelectorAll("fieldset.tls-service"));
  services.forEach((fieldset) => {
    updateBoxes(fieldset);
    tlsBoxes(fieldset).forEach((box) => box.addEventListener("change", () => updateBoxes(fieldset)));
  });
  // Disabled boxes are not sent with a form: enable them all as it goes.
  form.addEventListener("submit", () => {
    services.forEach((fieldset) => tlsBoxes(fieldset).forEach((box) => { box.disabled = false; }));
  });
}

function setUpHelp(button) {
  button.addEventListener("click", () => {
    const target = document.getElementById(button.dataset.toggle);
    if (target) target.hidden = !target.hidden;
  });
}

function setUpVerify(button) {
  button.addEventListener("click", async () => {
    const input = document.getElementById(button.dataset.input);
    const output = document.getElementById(button.dataset.output);
    output.textContent = "Verifying…";
    try {
      const answer = await fetch("/system/ssl/verify?ciphers=" + encodeURIComponent(input.value),
        { credentials: "same-origin" });
      const body = await answer.json();
      if (!answer.ok) {
        output.textContent = body.error;
      } else {
        output.textContent = body.suites.join("\n") +
          "\nTLS v1.3 (fixed): " + body.tls13.join(", ");
      }
    } catch (e) {
      output.textContent = "The preview could not be loaded: " + e;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("ssl-form");
  if (form) setUpSslForm(form);
  document.querySelectorAll("button.help[data-toggle]").forEach(setUpHelp);
  document.querySelectorAll("button.verify").forEach(setUpVerify);
});
