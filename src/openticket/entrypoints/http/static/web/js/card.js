// Paying by card through Stripe: Stripe.js's card form and confirming a PaymentIntent with
// the client_secret our API answers (POST /api/orders/{id}/payments {"provider": "stripe"}).
// Stripe.js comes from Stripe itself, as Stripe requires; the page's policy lets it and its
// frames in only when this server offers Stripe. The payment settles by Stripe's webhook:
// the order's status, followed live, tells the buyer when it has.

import { loadScript } from "./api.js";

const STRIPE_JS = "https://js.stripe.com/v3/";

let card = null;
let stripe = null;

/** Show (and mount once) the card form in `field` ([data-stripe-key]). */
export async function showCard(field) {
  field.hidden = false;
  if (card) return;
  const Stripe = await loadScript(STRIPE_JS, "Stripe", "Stripe could not be reached: try again, or pay another way.");
  stripe = Stripe(field.dataset.stripeKey);
  card = stripe.elements().create("card");
  card.mount(field.querySelector("#card-element"));
}

export function hideCard(field) { field.hidden = true; }

/** Confirm the PaymentIntent of `clientSecret` with the card typed in; throws Stripe's message. */
export async function confirmCard(clientSecret) {
  if (!stripe || !card) throw new Error("The card form is not ready yet.");
  const result = await stripe.confirmCardPayment(clientSecret, { payment_method: { card } });
  if (result.error) throw new Error(result.error.message || "The card was declined.");
  return result.paymentIntent;
}
