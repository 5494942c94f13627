// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title PBTS Reputation: members' verified transfer statistics, published by one site.
/// @notice One record per member, keyed by `id = keccak256(blsPublicKey)` (the member's 48-byte
/// compressed BLS12-381 G1 public key). Counters are bytes and only ever grow. No password
/// material, no user names: nothing on chain identifies a member except their public key's hash.
/// @dev Every state change emits an event. Errors are custom errors (cheap, decodable).
/// Trust model (docs/chain.md): the owner (the site's account) writes its own records; a record
/// is copied from the predecessor chain (`referrer`, several hops) only by the owner, acting on a
/// member's request proven off-chain by a BLS signature, and only through contracts whose owners
/// approved their successor (`approveSuccessor`).
contract Reputation {
    /// @notice Most members one `updateUsers` call may carry.
    uint256 public constant MAX_BATCH = 100;
    /// @notice Most referrer hops `migrateUserData` walks.
    uint256 public constant MAX_HOPS = 8;
    /// @notice `ratio` is a fixed-point number with this many units per 1.0.
    uint256 public constant RATIO_ONE = 1e18;

    /// @dev Both counters share one storage slot, so an update of a known member writes 1 slot.
    struct Record {
        uint128 uploaded; // bytes
        uint128 downloaded; // bytes
    }

    /// @dev Written once per member (creation, migration): 8 + 20 bytes, one slot.
    struct Meta {
        uint64 createdAt; // unix seconds; non-zero means the member exists
        address migratedFrom; // the contract the record was copied from, or zero
    }

    address public owner;
    address public pendingOwner;
    /// @notice The predecessor contract (zero for the first of a chain). Fixed at creation.
    address public immutable referrer;
    /// @notice Number of member records.
    uint256 public userCount;
    /// @notice Where the site publishes off-chain data (a URL), as in the original contract.
    string public offchainDataUrl;
    /// @notice Successors this contract's owner endorsed: they may copy records from here.
    mapping(address => bool) public approvedSuccessor;

    mapping(bytes32 => Record) private _records;
    mapping(bytes32 => Meta) private _meta;

    event UserAdded(bytes32 indexed id, uint128 uploaded, uint128 downloaded);
    event UserUpdated(bytes32 indexed id, uint128 uploaded, uint128 downloaded);
    event UserMigrated(
        bytes32 indexed id,
        address indexed source,
        uint128 importedUploaded,
        uint128 importedDownloaded,
        uint128 uploaded,
        uint128 downloaded
    );
    event SuccessorApproved(address indexed successor, bool approved);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event OffchainDataUrlSet(string url);

    error NotOwner(address caller);
    error NotPendingOwner(address caller);
    error ZeroAddress();
    error ZeroId();
    error NotAContract(address account);
    error UserExists(bytes32 id);
    error UnknownUser(bytes32 id);
    error CounterDecreased(bytes32 id);
    error BatchTooLarge(uint256 size, uint256 max);
    error EmptyBatch();
    error LengthMismatch();
    error AlreadyMigrated(bytes32 id);
    error NoReferrer();
    error NotApprovedSuccessor(address hop, address successor);
    error NotFoundInReferrers(bytes32 id);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @param initialOwner the account allowed to write (the site's account).
    /// @param referrer_ the predecessor Reputation contract, or zero.
    constructor(address initialOwner, address referrer_) {
        if (initialOwner == address(0)) revert ZeroAddress();
        if (referrer_ != address(0) && referrer_.code.length == 0) revert NotAContract(referrer_);
        owner = initialOwner;
        referrer = referrer_;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    // ----------------------------------------------------------------------------------------
    // Reads

    /// @notice The original contract's read, without its password fields:
    /// (id, downloadSize, uploadSize), sizes in bytes. Reverts `UnknownUser` for an unknown id.
    function getUserData(bytes32 id)
        external
        view
        returns (bytes32 userId, uint256 downloadSize, uint256 uploadSize)
    {
        if (_meta[id].createdAt == 0) revert UnknownUser(id);
        Record memory r = _records[id];
        return (id, r.downloaded, r.uploaded);
    }

    /// @notice Everything about `id`; never reverts (`exists` false and zeros when unknown).
    /// @return exists whether a record exists
    /// @return uploaded bytes
    /// @return downloaded bytes
    /// @return createdAt unix seconds of creation (or migration)
    /// @return migratedFrom the contract the record was copied from, or zero
    function userInfo(bytes32 id)
        external
        view
        returns (bool exists, uint128 uploaded, uint128 downloaded, uint64 createdAt, address migratedFrom)
    {
        Meta memory m = _meta[id];
        Record memory r = _records[id];
        return (m.createdAt != 0, r.uploaded, r.downloaded, m.createdAt, m.migratedFrom);
    }

    /// @notice uploaded / downloaded as a fixed-point number (`RATIO_ONE` = 1.0);
    /// `type(uint256).max` when nothing was downloaded. Reverts `UnknownUser`.
    function ratio(bytes32 id) external view returns (uint256) {
        if (_meta[id].createdAt == 0) revert UnknownUser(id);
        Record memory r = _records[id];
        if (r.downloaded == 0) return type(uint256).max;
        return (uint256(r.uploaded) * RATIO_ONE) / r.downloaded;
    }

    /// @notice Where `migrateUserData(id)` would copy from: the nearest contract up the referrer
    /// chain holding `id`, through endorsed hops only. Reverts as `migrateUserData` would
    /// (`NoReferrer`, `NotApprovedSuccessor`, `NotFoundInReferrers`).
    function findInReferrers(bytes32 id)
        public
        view
        returns (address source, uint128 uploaded, uint128 downloaded)
    {
        address successor = address(this);
        address hop = referrer;
        if (hop == address(0)) revert NoReferrer();
        for (uint256 i = 0; i < MAX_HOPS && hop != address(0); ++i) {
            if (!Reputation(hop).approvedSuccessor(successor)) {
                revert NotApprovedSuccessor(hop, successor);
            }
            (bool exists, uint128 up, uint128 down,,) = Reputation(hop).userInfo(id);
            if (exists) return (hop, up, down);
            successor = hop;
            hop = Reputation(hop).referrer();
        }
        revert NotFoundInReferrers(id);
    }

    // ----------------------------------------------------------------------------------------
    // Owner writes

    /// @notice Create a member's record. Reverts `UserExists` (never overwrites), `ZeroId`.
    function addUser(bytes32 id, uint128 uploaded, uint128 downloaded) external onlyOwner {
        if (id == bytes32(0)) revert ZeroId();
        if (_meta[id].createdAt != 0) revert UserExists(id);
        _create(id, uploaded, downloaded);
    }

    /// @notice Set a known member's totals (absolute values, bytes). Reverts `UnknownUser`,
    /// `CounterDecreased` when either value is below the stored one. Setting the same values
    /// again is a no-op (no event), so re-sending an update never changes anything.
    function updateUser(bytes32 id, uint128 uploaded, uint128 downloaded) external onlyOwner {
        Record memory r = _records[id];
        if ((r.uploaded | r.downloaded) == 0 && _meta[id].createdAt == 0) revert UnknownUser(id);
        _update(id, r, uploaded, downloaded);
    }

    /// @notice Set the totals of up to `MAX_BATCH` members (absolute values, bytes), creating
    /// unknown ones. Reverts as a whole: `EmptyBatch`, `BatchTooLarge`, `LengthMismatch`,
    /// `ZeroId`, `CounterDecreased` (any member), so a batch applies entirely or not at all.
    function updateUsers(bytes32[] calldata ids, uint128[] calldata uploaded, uint128[] calldata downloaded)
        external
        onlyOwner
    {
        uint256 n = ids.length;
        if (n == 0) revert EmptyBatch();
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        if (uploaded.length != n || downloaded.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            bytes32 id = ids[i];
            Record memory r = _records[id];
            // A non-zero slot proves existence without reading the meta slot (saves 2100 gas).
            if ((r.uploaded | r.downloaded) != 0 || _meta[id].createdAt != 0) {
                _update(id, r, uploaded[i], downloaded[i]);
            } else {
                if (id == bytes32(0)) revert ZeroId();
                _create(id, uploaded[i], downloaded[i]);
            }
        }
    }

    /// @notice Copy member `id`'s record from the nearest predecessor holding it (see
    /// `findInReferrers`) and add it to this contract's record (created if missing). Owner only:
    /// the site calls it after checking the member's BLS signature over a challenge naming this
    /// contract. Once per member: reverts `AlreadyMigrated`; also `NoReferrer`,
    /// `NotApprovedSuccessor`, `NotFoundInReferrers`, and on uint128 overflow.
    function migrateUserData(bytes32 id) external onlyOwner {
        if (id == bytes32(0)) revert ZeroId();
        Meta memory m = _meta[id];
        if (m.migratedFrom != address(0)) revert AlreadyMigrated(id);
        (address source, uint128 up, uint128 down) = findInReferrers(id);
        Record memory r = _records[id];
        uint128 newUp = r.uploaded + up;
        uint128 newDown = r.downloaded + down;
        _records[id] = Record(newUp, newDown);
        if (m.createdAt == 0) {
            m.createdAt = uint64(block.timestamp);
            ++userCount;
        }
        m.migratedFrom = source;
        _meta[id] = m;
        emit UserMigrated(id, source, up, down, newUp, newDown);
    }

    /// @notice Endorse (or withdraw the endorsement of) a successor contract: an endorsed
    /// successor may copy members' records from this one (`migrateUserData`).
    function approveSuccessor(address successor, bool approved) external onlyOwner {
        if (successor == address(0)) revert ZeroAddress();
        approvedSuccessor[successor] = approved;
        emit SuccessorApproved(successor, approved);
    }

    function setOffchainDataUrl(string calldata url) external onlyOwner {
        offchainDataUrl = url;
        emit OffchainDataUrlSet(url);
    }

    /// @notice Start a two-step ownership transfer; `newOwner` must call `acceptOwnership`.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    // ----------------------------------------------------------------------------------------

    function _create(bytes32 id, uint128 uploaded, uint128 downloaded) private {
        _records[id] = Record(uploaded, downloaded);
        _meta[id] = Meta(uint64(block.timestamp), address(0));
        ++userCount;
        emit UserAdded(id, uploaded, downloaded);
    }

    function _update(bytes32 id, Record memory r, uint128 uploaded, uint128 downloaded) private {
        if (uploaded < r.uploaded || downloaded < r.downloaded) revert CounterDecreased(id);
        if (uploaded == r.uploaded && downloaded == r.downloaded) return;
        _records[id] = Record(uploaded, downloaded);
        emit UserUpdated(id, uploaded, downloaded);
    }
}
