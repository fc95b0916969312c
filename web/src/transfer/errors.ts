// Errors of the transfer flows themselves; the protocol's are in
// protocol/errors.ts.
import { FerryError } from "../protocol/errors";

// TooLarge: the files are more than the server allows for one transfer
// (maxBytes). The sender offers nothing; the receiver declines the offer
// (declined is then true). The page words it, with the sizes.
export class TooLarge extends FerryError {
  constructor(
    readonly total: number,
    readonly max: number,
    readonly declined = false,
  ) {
    super("These files are larger than this server allows for one transfer.");
  }
}

export function canceledByUs(): FerryError {
  return new FerryError("You canceled the transfer.", "canceled");
}

export function internal(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  console.error("ferry:", err);
  return new FerryError("Something went wrong on this page. Reload it and try again; if it keeps happening, report it to the server's operator.");
}
